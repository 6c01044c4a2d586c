import type { Authenticator } from '../registry/auth.js';
import type { RegistryClient } from '../registry/client.js';
import type { RoundTripper } from '../registry/http.js';

/**
 * What resolving charts needs from the run, and nothing more:
 *
 * - `registry`: the run's registry client, for `oci://` charts and
 *   dependencies (its mirrors, credentials, retries, `--plain-http`);
 * - `http` and `auth`: the same HTTP layer and authenticator, for classic
 *   repositories: their `--ca-file`s and TLS settings, and Basic or Bearer
 *   challenges answered with the credentials of that host only (the auth file
 *   or `--username`), never sent to another origin a URL or a redirect names;
 * - `prefix`: `--chart-prefix`, the repository folder charts land in;
 * - `warn`: one line for something the user should know that does not stop
 *   the run (no digest in an index entry, dependencies left as they were).
 */
export interface ChartContext {
  registry: RegistryClient;
  http: RoundTripper;
  auth: Authenticator;
  prefix: string;
  warn: (line: string) => void;
}
