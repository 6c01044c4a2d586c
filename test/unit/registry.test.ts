import { describe, expect, it } from 'vitest';
import { parseChallenges } from '../../src/registry/challenge.js';
import { parseDockerConfig } from '../../src/registry/credentials.js';
import { endpointRepository, parseMirror, resolveEndpoint } from '../../src/registry/endpoint.js';
import { backoffDelay, parseRetryAfter } from '../../src/registry/retry.js';
import { redactUrl } from '../../src/registry/errors.js';
import type { HttpResponse } from '../../src/registry/http.js';
import { errorSummary, readErrorText } from '../../src/registry/status.js';

describe('WWW-Authenticate', () => {
  it('parses a Bearer challenge whose scope holds commas', () => {
    const c = parseChallenges(
      'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"',
    );
    expect(c).toEqual([
      {
        scheme: 'bearer',
        params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' },
      },
    ]);
  });
  it('parses Basic and several challenges in one header', () => {
    const c = parseChallenges('Basic realm="Registry Realm", Bearer realm="https://t/x"');
    expect(c.map((x) => x.scheme)).toEqual(['basic', 'bearer']);
    expect(c[0]!.params.realm).toBe('Registry Realm');
  });
  it('returns nothing for a missing header', () => {
    expect(parseChallenges(null)).toEqual([]);
  });
});

describe('Docker config.json', () => {
  it('decodes auth, username/password and maps Docker Hub keys to docker.io', () => {
    const text = JSON.stringify({
      auths: {
        'https://index.docker.io/v1/': { auth: Buffer.from('hub:secret:with:colons').toString('base64') },
        'registry.lan:5000': { username: 'ci', password: 'pw' },
        'https://ghcr.io': { auth: Buffer.from('u:p').toString('base64') },
        'empty.example': {},
      },
    });
    const table = parseDockerConfig(text, 'config.json');
    expect(table.get('docker.io')).toEqual({ username: 'hub', password: 'secret:with:colons' });
    expect(table.get('registry.lan:5000')).toEqual({ username: 'ci', password: 'pw' });
    expect(table.get('ghcr.io')).toEqual({ username: 'u', password: 'p' });
    expect(table.has('empty.example')).toBe(false);
  });
  it('names the file when it is not JSON, without echoing its content', () => {
    expect(() => parseDockerConfig('{"auths": {"x": secret', '/tmp/c.json')).toThrow(/\/tmp\/c\.json: not valid JSON/);
  });
});

describe('mirrors', () => {
  it('replaces the host and keeps the repository path', () => {
    const m = [parseMirror('*=http://127.0.0.1:5001')];
    const ep = resolveEndpoint('ghcr.io', m, false);
    expect(ep).toEqual({ baseUrl: 'http://127.0.0.1:5001', host: '127.0.0.1:5001', pathPrefix: '' });
    expect(endpointRepository(ep, 'siderolabs/installer')).toBe('siderolabs/installer');
  });
  it('treats a URL path as a repository prefix and prefers the exact host over *', () => {
    const m = [parseMirror('*=http://other:1'), parseMirror('ghcr.io=http://127.0.0.1:5001/ghcr.io')];
    const ep = resolveEndpoint('ghcr.io', m, false);
    expect(endpointRepository(ep, 'siderolabs/installer')).toBe('ghcr.io/siderolabs/installer');
    expect(resolveEndpoint('quay.io', m, false).host).toBe('other:1');
  });
  it('ignores a trailing /v2 in the mirror URL', () => {
    expect(resolveEndpoint('x.io', [parseMirror('*=https://m.lan/v2/')], false).pathPrefix).toBe('');
  });
  it('sends Docker Hub to registry-1.docker.io and honours --plain-http', () => {
    expect(resolveEndpoint('docker.io', [], false).baseUrl).toBe('https://registry-1.docker.io');
    expect(resolveEndpoint('127.0.0.1:5000', [], true).baseUrl).toBe('http://127.0.0.1:5000');
  });
  it.each(['ghcr.io', 'ghcr.io=127.0.0.1:5000', '=http://x', 'a=http://u:p@x/'])('rejects %j', (bad) => {
    expect(() => parseMirror(bad)).toThrow(/--registry-mirror/);
  });
});

describe('retries', () => {
  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4000)).toBe(6000);
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
  it('backs off exponentially within the cap, with jitter', () => {
    const p = { retries: 5, baseDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffDelay(p, 0, () => 0)).toBe(50);
    expect(backoffDelay(p, 0, () => 1)).toBe(100);
    expect(backoffDelay(p, 3, () => 1)).toBe(800);
    expect(backoffDelay(p, 10, () => 1)).toBe(1000);
  });
  it('strips query strings (signed URLs) from messages', () => {
    expect(redactUrl('https://cdn.example/blob?X-Amz-Signature=secret')).toBe('https://cdn.example/blob');
  });
});

describe('error bodies', () => {
  const answer = (buffer: (limit: number) => Promise<Buffer>) =>
    ({ status: 404, headers: { get: () => null }, url: 'https://r.test/v2/', buffer }) as unknown as HttpResponse;

  it('sum up the first distribution-spec error in one escaped line, or nothing when there is none', () => {
    expect(
      errorSummary(JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN', message: 'no such\nrepo\u001b[2J' }] })),
    ).toBe('NAME_UNKNOWN: no such\\nrepo\\x1b[2J');
    expect(errorSummary(JSON.stringify({ errors: [{ code: 'DENIED' }] }))).toBe('DENIED');
    expect(errorSummary('<html>bad gateway</html>')).toBe('');
    expect(errorSummary(JSON.stringify({ errors: [] }))).toBe('');
  });

  it('are read as text within a bound, and a body that breaks off reads as empty', async () => {
    const limits: number[] = [];
    const text = await readErrorText(answer(async (limit) => (limits.push(limit), Buffer.from('{"errors":[]}'))));
    expect(text).toBe('{"errors":[]}');
    expect(limits).toEqual([64 * 1024]);
    expect(await readErrorText(answer(() => Promise.reject(new Error('reset'))))).toBe('');
  });
});
