import { printable } from '../util/text.js';
import type { Authenticator } from './auth.js';
import { resolveEndpoint, type Endpoint, type Mirror } from './endpoint.js';
import type { HttpRequest, HttpResponse, RoundTripper } from './http.js';
import { listCatalog, type CatalogOptions } from './listings.js';
import { Repository } from './repository.js';
import { DEFAULT_RETRY, withRetry, type RetryPolicy } from './retry.js';
import { AuthTransport } from './transport.js';

export interface RetryEvent {
  what: string;
  attempt: number;
  delayMs: number;
  reason: string;
}

export interface RegistryClientOptions {
  mirrors?: readonly Mirror[];
  plainHttp?: boolean;
  retry?: RetryPolicy;
  onRetry?: (e: RetryEvent) => void;
  /** Upload blobs larger than this in PATCH chunks of at most this many bytes. */
  chunkSize?: number;
}

/**
 * What a run learned about one registry's behaviour, so that no later request,
 * in any of its repositories, has to learn it again.
 */
export interface RegistryTraits {
  /** It answered 404 to the referrers API: it does not offer it, so it is not asked again. */
  withoutReferrersApi: boolean;
  /** It refused a monolithic upload as too large (413): it gets chunks from then on. */
  needsChunks: boolean;
}

/**
 * A distribution-spec client for every registry a run talks to. Callers ask
 * for a `Repository` handle in the terms of the ORIGINAL reference and speak
 * to it; the protocol lives in one module per part (manifests, blobs, uploads,
 * listings, referrers), the round trip with its authorization in the
 * transport, and this holds what they share: where each registry is, one
 * retry policy, and what each registry turned out to need.
 */
export class RegistryClient {
  private readonly transport: AuthTransport;
  private readonly retry: RetryPolicy;
  private readonly learned = new Map<string, RegistryTraits>();

  constructor(
    http: RoundTripper,
    auth: Authenticator,
    private readonly opts: RegistryClientOptions = {},
  ) {
    this.transport = new AuthTransport(http, auth);
    this.retry = opts.retry ?? DEFAULT_RETRY;
  }

  /** A handle on one repository of `registry`, for calls that all concern it. */
  repository(registry: string, name: string): Repository {
    return new Repository(this, registry, name);
  }

  /** The repositories `registry` lists in its catalog; see `listCatalog`. */
  listCatalog(registry: string, opts?: CatalogOptions): Promise<Set<string> | undefined> {
    return listCatalog(this, registry, opts);
  }

  endpoint(registry: string): Endpoint {
    return resolveEndpoint(registry, this.opts.mirrors ?? [], this.opts.plainHttp ?? false);
  }

  /** The retry policy and the retry report of this client, for transfers retried by their callers. */
  get retryPolicy(): RetryPolicy {
    return this.retry;
  }

  reportRetry(e: RetryEvent): void {
    this.opts.onRetry?.(e);
  }

  /** The --chunk-size of the run, if one was given. */
  get chunkSize(): number | undefined {
    return this.opts.chunkSize;
  }

  /** What this run learned about `registry` so far (one record per registry, changed in place). */
  traits(registry: string): RegistryTraits {
    let traits = this.learned.get(registry);
    if (!traits) this.learned.set(registry, (traits = { withoutReferrersApi: false, needsChunks: false }));
    return traits;
  }

  /** One authorized round trip to the endpoint; see `AuthTransport.send`. */
  send(ep: Endpoint, scope: string, req: HttpRequest, what: string): Promise<HttpResponse> {
    return this.transport.send(ep, scope, req, what);
  }

  /** `op` under this client's retry policy, each retry reported. */
  retrying<T>(what: string, op: () => Promise<T>): Promise<T> {
    return withRetry(this.retry, op, (err, attempt, delayMs) =>
      this.opts.onRetry?.({ what, attempt, delayMs, reason: printable(err.message, 400) }),
    );
  }
}
