import { printable } from '../util/text.js';
import type { Authenticator } from './auth.js';
import { endpointOrigin, type Endpoint } from './endpoint.js';
import { RegistryError, redactUrl } from './errors.js';
import type { HttpRequest, HttpResponse, RoundTripper } from './http.js';
import { originOf } from './origin.js';
import { isRetryableStatus } from './retry.js';
import { statusError } from './status.js';

/**
 * The registry's round trip: every request goes out with the authorization
 * cached for its scope, and a 401 is answered with what its challenge asks
 * for (a token, or Basic credentials), then the request is sent once more.
 * Answers that say "try again later" (429, most 5xx) become retryable errors
 * here, so no caller mistakes them for an answer.
 */
export class AuthTransport {
  constructor(
    private readonly http: RoundTripper,
    private readonly auth: Authenticator,
  ) {}

  /**
   * Sends with the cached authorization; on 401 answers the challenge once and
   * resends. A second 401 means the credentials are wrong: fail at once, no storm.
   * A streamed body cannot be sent twice, so its 401 is final too.
   * Credentials go to the registry's own origin only; a 401 from anywhere else
   * (a redirect target, an upload URL the registry handed out) is not answered,
   * since its challenge would name a realm of a stranger's choosing.
   * `scope` may name several scopes, space-separated: the first is the one the
   * authorization is cached under.
   */
  async send(ep: Endpoint, scope: string, req: HttpRequest, what: string): Promise<HttpResponse> {
    const primary = scope.split(' ')[0]!;
    const origin = endpointOrigin(ep);
    for (let round = 0; ; round++) {
      const header = this.auth.header(ep.host, primary);
      const res = await this.http.send(req, header ? { header, origin } : undefined, what);
      if (res.status === 401 && originOf(res.url) !== origin) throw foreignChallenge(res, ep, origin, what);
      const resendable = round === 0 && (req.body === undefined || Buffer.isBuffer(req.body));
      if (res.status !== 401 || !resendable) return this.settled(res, ep, what);
      res.discard();
      this.auth.invalidate(ep.host, primary);
      await this.auth.answer(ep.host, origin, scope, res.headers.get('www-authenticate'));
    }
  }

  /** An answer no challenge will change: a final 401 and "try again later" become errors, the rest is the caller's. */
  private settled(res: HttpResponse, ep: Endpoint, what: string): HttpResponse {
    if (res.status === 401) {
      res.discard();
      const hint = this.auth.hasCredential(ep.host)
        ? 'the credentials were rejected; check username and password'
        : 'no credentials for this registry; use docker login, --authfile, or --username with --password-stdin';
      throw new RegistryError('auth', `${ep.host}: unauthorized (401) for ${what}: ${hint}`, { status: 401 });
    }
    if (isRetryableStatus(res.status)) {
      res.discard();
      throw statusError(res.status, `${what}: ${ep.host} answered ${res.status}`, res.headers);
    }
    return res;
  }
}

/** A 401 from an origin that is not the registry's: its challenge is not answered. */
function foreignChallenge(res: HttpResponse, ep: Endpoint, origin: string, what: string): RegistryError {
  res.discard();
  return new RegistryError(
    'auth',
    `${ep.host}: ${what} reached ${printable(redactUrl(res.url), 120)}, another origin, which asks for credentials (401); they are only sent to ${origin}`,
    { status: 401 },
  );
}
