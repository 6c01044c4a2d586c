// The registry client driven through a scripted round tripper: each test plays a registry's
// answers from a function, with no socket and no process, and reads back every request sent.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Authenticator } from '../../src/registry/auth.js';
import { RegistryClient } from '../../src/registry/client.js';
import type { Credential } from '../../src/registry/credentials.js';
import { RegistryError } from '../../src/registry/errors.js';
import type { Authorization, HttpRequest, HttpResponse, RoundTripper } from '../../src/registry/http.js';

interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** The URL the answer came from, when a redirect took the request elsewhere. */
  url?: string;
}

interface Sent {
  method: HttpRequest['method'];
  url: string;
  /** The Authorization header value sent, if any. */
  authorization: string | undefined;
  headers: Record<string, string>;
  /** Bytes of a buffer body; undefined for no body or a stream. */
  bodyLength: number | undefined;
}

/** A round tripper that answers from `play` and remembers every request, in order. */
class ScriptedRegistry implements RoundTripper {
  readonly sent: Sent[] = [];

  constructor(private readonly play: (req: Sent) => Answer) {}

  async send(req: HttpRequest, authorization: Authorization | undefined): Promise<HttpResponse> {
    const sent: Sent = {
      method: req.method,
      url: req.url,
      authorization:
        authorization && new URL(req.url).origin === authorization.origin ? authorization.header : undefined,
      headers: req.headers ?? {},
      bodyLength: Buffer.isBuffer(req.body) ? req.body.length : undefined,
    };
    this.sent.push(sent);
    return responseOf(this.play(sent), req.url);
  }

  /** `METHOD url` of every request, for asserting order and count at a glance. */
  get lines(): string[] {
    return this.sent.map((s) => `${s.method} ${s.url}`);
  }
}

function responseOf(answer: Answer, requested: string): HttpResponse {
  const body = Buffer.from(answer.body ?? '');
  const headers = new Map(Object.entries(answer.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    status: answer.status,
    headers: { get: (name: string) => headers.get(name.toLowerCase()) ?? null },
    url: answer.url ?? requested,
    get body() {
      return Readable.from([body]);
    },
    buffer: async (limit: number) => {
      if (body.length > limit) throw new RegistryError('malformed', `answer exceeds ${limit} bytes`);
      return body;
    },
    discard() {},
  };
}

/** The error `p` fails with, which must be a RegistryError. */
async function rejection(p: Promise<unknown>): Promise<RegistryError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RegistryError);
  return err as RegistryError;
}

const NO_RETRIES = { retries: 0, baseDelayMs: 0, maxDelayMs: 0 };

function clientOf(registry: ScriptedRegistry, credential?: Credential, chunkSize?: number): RegistryClient {
  const credentials = (host: string) => (host === 'reg.test' ? credential : undefined);
  return new RegistryClient(registry, new Authenticator(registry, credentials), {
    retry: NO_RETRIES,
    ...(chunkSize !== undefined ? { chunkSize } : {}),
  });
}

const MANIFEST = JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json' });
const manifestAnswer: Answer = {
  status: 200,
  headers: {
    'content-type': 'application/vnd.oci.image.manifest.v1+json',
    'docker-content-digest': `sha256:${createHash('sha256').update(MANIFEST).digest('hex')}`,
  },
  body: MANIFEST,
};
const DIGEST = `sha256:${'a'.repeat(64)}`;

describe('answering a 401', () => {
  const bearer = 'Bearer realm="https://auth.test/token",service="reg.test"';

  it('fetches the token the Bearer challenge names and sends the request once more with it', async () => {
    const registry = new ScriptedRegistry((req) => {
      if (req.url.startsWith('https://auth.test/')) return { status: 200, body: JSON.stringify({ token: 'T1' }) };
      if (req.authorization !== 'Bearer T1') return { status: 401, headers: { 'www-authenticate': bearer } };
      return manifestAnswer;
    });
    const repo = clientOf(registry).repository('reg.test', 'lib/app');

    const got = await repo.getManifest('v1');

    expect(got.bytes.toString()).toBe(MANIFEST);
    expect(registry.lines).toEqual([
      'GET https://reg.test/v2/lib/app/manifests/v1',
      'GET https://auth.test/token?service=reg.test&scope=repository%3Alib%2Fapp%3Apull',
      'GET https://reg.test/v2/lib/app/manifests/v1',
    ]);
    expect(registry.sent.map((s) => s.authorization)).toEqual([undefined, undefined, 'Bearer T1']);
    // The token is kept for its scope: the next request carries it at once.
    await repo.headManifest('v1');
    expect(registry.sent.slice(3).map((s) => `${s.method} ${s.authorization}`)).toEqual(['HEAD Bearer T1']);
  });

  it('sends Basic credentials when the challenge asks for them, and fails at once when they are rejected', async () => {
    const accepted = `Basic ${Buffer.from('user:right').toString('base64')}`;
    const registry = new ScriptedRegistry((req) =>
      req.authorization === accepted
        ? manifestAnswer
        : { status: 401, headers: { 'www-authenticate': 'Basic realm="r"' } },
    );
    const ok = await clientOf(registry, { username: 'user', password: 'right' })
      .repository('reg.test', 'lib/app')
      .getManifest('v1');
    expect(ok.bytes.toString()).toBe(MANIFEST);
    expect(registry.sent.map((s) => s.authorization)).toEqual([undefined, accepted]);

    const wrong = new ScriptedRegistry(() => ({ status: 401, headers: { 'www-authenticate': 'Basic realm="r"' } }));
    const denied = clientOf(wrong, { username: 'user', password: 'wrong' }).repository('reg.test', 'lib/app');
    await expect(denied.getManifest('v1')).rejects.toThrow(
      /reg\.test: unauthorized \(401\) for manifest reg\.test\/lib\/app:v1: the credentials were rejected/,
    );
    // One answer to the challenge, no storm.
    expect(wrong.sent).toHaveLength(2);
  });
});

describe('blob upload too large for one request (413)', () => {
  const uploads = 'https://reg.test/v2/lib/app/blobs/uploads';

  /** A registry that refuses a monolithic PUT above `maxBody` bytes, and takes any chunk. */
  function chunksOnly(maxBody: number): ScriptedRegistry {
    let session = 0;
    return new ScriptedRegistry((req) => {
      const length = Number(req.headers['content-length'] ?? 0);
      if (req.method === 'POST')
        return { status: 202, headers: { location: `/v2/lib/app/blobs/uploads/s${++session}` } };
      if (req.method === 'DELETE') return { status: 204 };
      if (req.method === 'PUT' && length > maxBody) return { status: 413 };
      if (req.method === 'PATCH') return { status: 202, headers: { location: new URL(req.url).pathname } };
      return { status: 201 };
    });
  }

  it('cancels the refused session and sends the same blob again in PATCH chunks, with a fresh body', async () => {
    const registry = chunksOnly(64 * 1024);
    const blob = Buffer.alloc(100 * 1024, 7);
    let bodies = 0;
    const repo = clientOf(registry).repository('reg.test', 'lib/app');

    await repo.uploadBlob(DIGEST, blob.length, () => (bodies++, Readable.from([blob])));

    expect(registry.lines).toEqual([
      `POST ${uploads}/`,
      `PUT ${uploads}/s1?digest=${encodeURIComponent(DIGEST)}`,
      `DELETE ${uploads}/s1`,
      `POST ${uploads}/`,
      `PATCH ${uploads}/s2`,
      `PUT ${uploads}/s2?digest=${encodeURIComponent(DIGEST)}`,
    ]);
    expect(registry.sent[4]!.headers['content-range']).toBe(`0-${blob.length - 1}`);
    expect(registry.sent[5]!.bodyLength).toBe(0);
    expect(bodies).toBe(2);
  });

  it('remembers the refusal: the next large blob to that registry goes in chunks from the start', async () => {
    const registry = chunksOnly(8 * 1024 * 1024);
    const client = clientOf(registry);
    const large = Buffer.alloc(9 * 1024 * 1024, 1);
    await client.repository('reg.test', 'lib/app').uploadBlob(DIGEST, large.length, () => large);
    const before = registry.sent.length;

    await client.repository('reg.test', 'lib/other').uploadBlob(DIGEST, large.length, () => large);

    expect(registry.sent.slice(before).map((s) => `${s.method} ${s.headers['content-length']}`)).toEqual([
      'POST 0',
      `PATCH ${8 * 1024 * 1024}`,
      `PATCH ${1024 * 1024}`,
      'PUT 0',
    ]);
  });
});

describe('URLs that lead to another origin', () => {
  it('follows a tags page link on the registry, and refuses one to another origin without asking it', async () => {
    const pages = (next: string) =>
      new ScriptedRegistry((req) =>
        req.url.includes('last=a')
          ? { status: 200, body: JSON.stringify({ tags: ['b'] }) }
          : { status: 200, headers: { link: `<${next}>; rel="next"` }, body: JSON.stringify({ tags: ['a'] }) },
      );
    const home = pages('/v2/lib/app/tags/list?last=a&n=1000');
    expect(await clientOf(home).repository('reg.test', 'lib/app').listTags()).toEqual({
      tags: ['a', 'b'],
      complete: true,
    });
    expect(home.sent).toHaveLength(2);

    const away = pages('https://elsewhere.test/v2/lib/app/tags/list?last=a&n=1000');
    const err = await rejection(clientOf(away).repository('reg.test', 'lib/app').listTags());
    expect(err.kind).toBe('malformed');
    expect(err.message).toMatch(/the next page is on another origin \(https:\/\/elsewhere\.test\)/);
    expect(away.lines).toEqual(['GET https://reg.test/v2/lib/app/tags/list?n=1000']);
  });

  it('refuses a catalog page link to another origin', async () => {
    const registry = new ScriptedRegistry(() => ({
      status: 200,
      headers: { link: '<https://elsewhere.test/v2/_catalog?last=a&n=1000>; rel="next"' },
      body: JSON.stringify({ repositories: ['a'] }),
    }));
    await expect(clientOf(registry).listCatalog('reg.test')).rejects.toThrow(/the next page is on another origin/);
    expect(registry.lines).toEqual(['GET https://reg.test/v2/_catalog?n=1000']);
  });

  it('does not answer a challenge from the origin a redirect led to', async () => {
    // The registry redirected the blob to storage that asks for credentials of its own choosing.
    const registry = new ScriptedRegistry(() => ({
      status: 401,
      url: 'https://cdn.test/blob?signature=secret',
      headers: { 'www-authenticate': 'Bearer realm="https://cdn.test/token"' },
    }));
    const repo = clientOf(registry, { username: 'user', password: 'pw' }).repository('reg.test', 'lib/app');

    await expect(repo.openBlob(DIGEST)).rejects.toThrow(
      /reached https:\/\/cdn\.test\/blob, another origin, which asks for credentials \(401\); they are only sent to https:\/\/reg\.test$/,
    );
    expect(registry.lines).toEqual([`GET https://reg.test/v2/lib/app/blobs/${DIGEST}`]);
  });
});

describe('the referrers API', () => {
  it('is not asked again of a registry that answered 404, in any of its repositories', async () => {
    const registry = new ScriptedRegistry((req) =>
      req.url.startsWith('https://reg.test/')
        ? { status: 404 }
        : {
            status: 200,
            headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' },
            body: JSON.stringify({ manifests: [{ digest: DIGEST }] }),
          },
    );
    const client = clientOf(registry);

    expect(await client.repository('reg.test', 'lib/app').referrers(DIGEST)).toBeUndefined();
    expect(await client.repository('reg.test', 'lib/other').referrers(DIGEST)).toBeUndefined();
    expect(await client.repository('other.test', 'lib/app').referrers(DIGEST)).toEqual([DIGEST]);

    expect(registry.lines).toEqual([
      `GET https://reg.test/v2/lib/app/referrers/${DIGEST}`,
      `GET https://other.test/v2/lib/app/referrers/${DIGEST}`,
    ]);
  });
});

describe('error bodies', () => {
  const refusal = (code: string, message: string) => JSON.stringify({ errors: [{ code, message }] });

  it('name the code and message a registry gives for a refused push or manifest', async () => {
    const registry = new ScriptedRegistry((req) =>
      req.method === 'POST'
        ? { status: 404, body: refusal('NAME_UNKNOWN', 'repository name not known to registry') }
        : { status: 400, body: refusal('MANIFEST_BLOB_UNKNOWN', 'blob unknown to registry') },
    );
    const repo = clientOf(registry).repository('reg.test', 'lib/app');

    expect(await repo.probePush()).toBe('404 NAME_UNKNOWN: repository name not known to registry');
    const err = await rejection(
      repo.putManifest('v1', Buffer.from(MANIFEST), 'application/vnd.oci.image.manifest.v1+json'),
    );
    expect(err).toMatchObject({ kind: 'not-found', status: 400 });
    expect(err.message).toBe(
      'manifest reg.test/lib/app:v1: the registry refused it because content it references is missing (MANIFEST_BLOB_UNKNOWN: blob unknown to registry)',
    );
  });
});
