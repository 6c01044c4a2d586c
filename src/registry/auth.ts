import { parseChallenges, type Challenge } from './challenge.js';
import type { Credential, CredentialLookup } from './credentials.js';
import { RegistryError } from './errors.js';
import type { RoundTripper } from './http.js';
import { printable } from '../util/text.js';

interface CachedToken {
  header: string;
  expiresAt: number;
}

/** Tokens are refreshed this long before the server says they expire. */
const EXPIRY_MARGIN_MS = 10_000;
/** The token spec's default when `expires_in` is absent. */
const DEFAULT_TOKEN_LIFETIME_S = 60;
const MAX_TOKEN_RESPONSE = 1024 * 1024;

/**
 * Docker token-spec and Basic authentication for one run. Tokens are cached per
 * registry host and scope, so parallel blob fetches of one repository share one
 * token and a 401 refreshes only what expired.
 */
export class Authenticator {
  private readonly tokens = new Map<string, CachedToken>();
  private readonly basic = new Map<string, string>();
  private readonly pending = new Map<string, Promise<void>>();

  constructor(
    private readonly http: RoundTripper,
    private readonly credentials: CredentialLookup,
  ) {}

  /** The Authorization value to send for (host, scope), if one is known. */
  header(host: string, scope: string): string | undefined {
    const t = this.tokens.get(`${host} ${scope}`);
    if (t && t.expiresAt > Date.now()) return t.header;
    return this.basic.get(host);
  }

  /**
   * Reacts to a 401 of the registry at `origin`: fetches what the challenge asks
   * for. Concurrent callers for the same scope wait on one token request instead
   * of stampeding.
   */
  async answer(host: string, origin: string, scope: string, wwwAuthenticate: string | null): Promise<void> {
    const key = `${host} ${scope}`;
    let p = this.pending.get(key);
    if (!p) {
      p = this.fetchAuthorization(host, origin, scope, parseChallenges(wwwAuthenticate)).finally(() =>
        this.pending.delete(key),
      );
      this.pending.set(key, p);
    }
    return p;
  }

  /** Forget what was sent, so the next request obtains a fresh token. */
  invalidate(host: string, scope: string): void {
    this.tokens.delete(`${host} ${scope}`);
  }

  hasCredential(host: string): boolean {
    return this.credentials(host) !== undefined;
  }

  private async fetchAuthorization(
    host: string,
    origin: string,
    scope: string,
    challenges: Challenge[],
  ): Promise<void> {
    const cred = this.credentials(host);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer) {
      this.tokens.set(`${host} ${scope}`, await this.fetchToken(host, origin, scope, bearer, cred));
      return;
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      if (!cred?.username) {
        throw new RegistryError(
          'auth',
          `${host}: the registry requires credentials; log in with docker login, pass --authfile, or --username with --password-stdin`,
          { status: 401 },
        );
      }
      this.basic.set(host, basicHeader(cred));
      return;
    }
    throw new RegistryError(
      'auth',
      `${host}: unauthorized, and the registry offered no usable authentication challenge`,
      { status: 401 },
    );
  }

  /**
   * The token spec's flow: the realm the registry names, and only it, receives
   * the user's credentials (Basic, or a refresh token in the form body), never in
   * clear when the registry itself is reached over https.
   */
  private async fetchToken(
    host: string,
    origin: string,
    scope: string,
    challenge: Challenge,
    cred: Credential | undefined,
  ): Promise<CachedToken> {
    const url = realmUrl(host, challenge.params.realm);
    const sendsSecret = Boolean(cred?.username || cred?.identityToken);
    if (sendsSecret && url.protocol === 'http:' && origin.startsWith('https:')) {
      throw new RegistryError(
        'auth',
        `${host}: the registry's token realm ${printable(url.origin, 100)} is plain http while the registry uses https; credentials are not sent in clear: the realm must use https`,
        { status: 401 },
      );
    }
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    const scopes = new Set([scope]);
    // The challenge names the scope of the resource that was denied (e.g. the catalog).
    if (challenge.params.scope && !scope.startsWith('repository:')) scopes.add(challenge.params.scope);
    for (const s of scopes) if (s) url.searchParams.append('scope', s);
    if (cred?.username) url.searchParams.set('account', cred.username);

    const headers: Record<string, string> = { accept: 'application/json' };
    let res;
    if (cred?.identityToken) {
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: cred.identityToken,
        client_id: 'airgap-bundle',
      });
      if (challenge.params.service) form.set('service', challenge.params.service);
      form.set('scope', [...scopes].join(' '));
      headers['content-type'] = 'application/x-www-form-urlencoded';
      res = await this.http.send(
        { method: 'POST', url: `${url.origin}${url.pathname}`, headers, body: Buffer.from(form.toString()) },
        undefined,
        'token request',
      );
    } else {
      res = await this.http.send(
        { method: 'GET', url: url.href, headers },
        cred?.username ? { header: basicHeader(cred), origin: url.origin } : undefined,
        'token request',
      );
    }
    if (res.status === 401 || res.status === 403) {
      res.discard();
      throw new RegistryError(
        'auth',
        `${host}: authentication failed (token server answered ${res.status}); check the username and password for this registry`,
        { status: res.status },
      );
    }
    if (res.status !== 200) {
      res.discard();
      const retryable = res.status === 429 || res.status >= 500;
      throw new RegistryError('auth', `${host}: token server answered ${res.status}`, {
        status: res.status,
        retryable,
      });
    }
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse((await res.buffer(MAX_TOKEN_RESPONSE)).toString('utf8'));
    } catch {
      throw new RegistryError('auth', `${host}: token server answered something that is not JSON`, { status: 200 });
    }
    const token =
      typeof body.token === 'string'
        ? body.token
        : typeof body.access_token === 'string'
          ? body.access_token
          : undefined;
    if (!token) throw new RegistryError('auth', `${host}: token server answered without a token`, { status: 200 });
    const lifetime =
      typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_LIFETIME_S;
    return { header: `Bearer ${token}`, expiresAt: Date.now() + Math.max(1000, lifetime * 1000 - EXPIRY_MARGIN_MS) };
  }
}

function realmUrl(host: string, realm: string | undefined): URL {
  if (!realm) throw new RegistryError('auth', `${host}: Bearer challenge without a realm`, { status: 401 });
  let url: URL;
  try {
    url = new URL(realm);
  } catch {
    throw new RegistryError('auth', `${host}: Bearer realm is not a URL`, { status: 401 });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new RegistryError('auth', `${host}: Bearer realm is not an http or https URL`, { status: 401 });
  return url;
}

function basicHeader(cred: Credential): string {
  return `Basic ${Buffer.from(`${cred.username ?? ''}:${cred.password ?? ''}`).toString('base64')}`;
}
