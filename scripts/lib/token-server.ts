// A minimal token server for the Docker registry token authentication flow: the registry
// answers 401 with a Bearer challenge, the client fetches a signed JWT here, then retries.
import crypto from 'node:crypto';
import http from 'node:http';
import { rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { onExit } from './process.js';
import { selfSignedCertificate } from './tls.js';

export interface TokenServerOptions {
  service: string; // becomes the token's audience; the registry rejects other audiences
  issuer: string; // must equal the registry's auth.token.issuer
  username: string;
  password: string;
  lifetimeSeconds?: number; // default 300
  allowAnonymousPull?: boolean; // default false
}

export interface TokenServer {
  url: string; // the realm: http://127.0.0.1:PORT/token
  certFile: string; // PEM certificate of the signing key, for the registry's auth.token.rootcertbundle
  readonly issued: number; // tokens handed out so far
  stop(): Promise<void>;
}

interface Access {
  type: string;
  name: string;
  actions: string[];
}

/**
 * Distribution 2.8 finds the verification key through the JWT `kid` header, read as a libtrust
 * fingerprint of a key in rootcertbundle: SHA-256 of the DER SubjectPublicKeyInfo, first 240 bits,
 * base32 without padding, in colon-separated groups of four characters.
 */
export function libtrustKeyId(publicKey: crypto.KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const b32 = base32(crypto.createHash('sha256').update(der).digest().subarray(0, 30));
  return b32.match(/.{4}/g)!.join(':');
}

function base32(bytes: Buffer): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

/** Parses `type:name:actions`; names may not contain ':' but a type may carry a "(class)". */
function parseScope(scope: string): Access | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  return {
    type: scope.slice(0, first).replace(/\(.*\)$/, ''),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(',')
      .filter(Boolean),
  };
}

function b64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  const lifetime = opts.lifetimeSeconds ?? 300;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'airgap-token-'));
  const unhook = onExit(() => rmSync(dir, { recursive: true, force: true }));
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyFile = path.join(dir, 'signing.key');
  const certFile = path.join(dir, 'signing.crt');
  await writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  await selfSignedCertificate(keyFile, certFile, opts.issuer);
  const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'ES256', kid: libtrustKeyId(publicKey) }));
  let issued = 0;

  function sign(subject: string, access: Access[]): { token: string; issuedAt: Date } {
    const issuedAt = new Date();
    const now = Math.floor(issuedAt.getTime() / 1000);
    // Note: the registry allows 60 s of clock skew past `exp`, so a short lifetime does not
    // make the registry reject a token quickly; clients still see `expires_in` as given.
    const claims = {
      iss: opts.issuer,
      sub: subject,
      aud: opts.service,
      exp: now + lifetime,
      nbf: now,
      iat: now,
      jti: crypto.randomUUID(),
      access,
    };
    const input = `${header}.${b64url(JSON.stringify(claims))}`;
    // JWS ES256 wants the raw r||s signature, not node's default DER encoding.
    const sig = crypto.sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
    return { token: `${input}.${b64url(sig)}`, issuedAt };
  }

  /** Returns the user name, '' for anonymous, or undefined for wrong credentials. */
  function authenticate(header: string | undefined): string | undefined {
    if (!header) return '';
    const m = /^Basic\s+(.+)$/i.exec(header);
    if (!m?.[1]) return undefined;
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const sep = decoded.indexOf(':');
    const user = decoded.slice(0, sep);
    return sep >= 0 && user === opts.username && decoded.slice(sep + 1) === opts.password ? user : undefined;
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET' || url.pathname !== '/token') return reply(404, { details: 'not found' });
    const user = authenticate(req.headers.authorization);
    if (user === undefined) return reply(401, { details: 'invalid username or password' });

    // Clients may repeat `scope` or pack several scopes into one, separated by spaces.
    const requested = url.searchParams
      .getAll('scope')
      .flatMap((s) => s.split(' '))
      .map(parseScope);
    const access: Access[] = [];
    for (const scope of requested) {
      if (!scope) continue;
      if (user) {
        // Authenticated users get whatever they ask for on repositories and the catalog.
        if (scope.type === 'repository' || scope.type === 'registry') access.push(scope);
      } else if (opts.allowAnonymousPull && scope.type === 'repository' && scope.actions.includes('pull')) {
        access.push({ ...scope, actions: ['pull'] });
      }
    }
    const { token, issuedAt } = sign(user, access);
    issued++;
    reply(200, { token, access_token: token, expires_in: lifetime, issued_at: issuedAt.toISOString() });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  // Like the registry process, the token server must not keep a script alive after a forgotten stop().
  server.unref();
  const { port } = server.address() as AddressInfo;

  let stopped: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}/token`,
    certFile,
    get issued() {
      return issued;
    },
    stop() {
      stopped ??= (async () => {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await rm(dir, { recursive: true, force: true });
        unhook();
      })();
      return stopped;
    },
  };
}
