import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DOCKER_HUB, DOCKER_HUB_API } from '../reference/reference.js';
import { UserInputError } from '../util/user-input.js';

export interface Credential {
  username?: string;
  password?: string;
  /** An OAuth refresh token stored by `docker login` with some providers. */
  identityToken?: string;
}

export type CredentialLookup = (host: string) => Credential | undefined;

export class CredentialsError extends UserInputError {
  override name = 'CredentialsError';
}

/** Where Docker looks: `--authfile`, else `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(authfile?: string, env = process.env): string {
  if (authfile) return authfile;
  if (env.DOCKER_CONFIG) return join(env.DOCKER_CONFIG, 'config.json');
  return join(homedir(), '.docker', 'config.json');
}

const HUB_KEYS = ['https://index.docker.io/v1/', 'index.docker.io', DOCKER_HUB, DOCKER_HUB_API];

/** `docker login` writes keys as bare hosts or as URLs; compare on the host alone. */
function keyHost(key: string): string {
  const noScheme = key.replace(/^[a-z]+:\/\//i, '');
  return noScheme.split('/')[0]!.toLowerCase();
}

/** Decodes the `auths` section of a Docker config file. Pure: takes the file's text. */
export function parseDockerConfig(text: string, source: string): Map<string, Credential> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new CredentialsError(`${source}: not valid JSON (${(err as Error).message})`);
  }
  const auths = (doc as { auths?: unknown })?.auths;
  const out = new Map<string, Credential>();
  if (typeof auths !== 'object' || auths === null) return out;
  for (const [key, value] of Object.entries(auths as Record<string, unknown>)) {
    if (typeof value !== 'object' || value === null) continue;
    const v = value as Record<string, unknown>;
    const cred: Credential = {};
    if (typeof v.auth === 'string' && v.auth !== '') {
      const decoded = Buffer.from(v.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0)
        throw new CredentialsError(
          `${source}: "auths" entry for ${keyHost(key)} has an "auth" value that is not base64 of user:password`,
        );
      cred.username = decoded.slice(0, colon);
      cred.password = decoded.slice(colon + 1);
    }
    if (typeof v.username === 'string') cred.username = v.username;
    if (typeof v.password === 'string') cred.password = v.password;
    if (typeof v.identitytoken === 'string' && v.identitytoken !== '') cred.identityToken = v.identitytoken;
    if (cred.username !== undefined || cred.identityToken !== undefined) {
      const host = HUB_KEYS.includes(key) || HUB_KEYS.includes(keyHost(key)) ? DOCKER_HUB : keyHost(key);
      out.set(host, cred);
    }
  }
  return out;
}

/**
 * Builds the credential lookup for a run. Explicit `--username` credentials win
 * for the host they are given for; the Docker config file is optional unless
 * named with `--authfile`.
 */
export function loadCredentials(opts: {
  authfile?: string;
  explicit?: { host: string; credential: Credential };
}): CredentialLookup {
  const path = dockerConfigPath(opts.authfile);
  let table = new Map<string, Credential>();
  try {
    table = parseDockerConfig(readFileSync(path, 'utf8'), path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !opts.authfile) table = new Map();
    else if (code === 'ENOENT') throw new CredentialsError(`auth file ${path} does not exist`);
    else
      throw err instanceof CredentialsError
        ? err
        : new CredentialsError(`cannot read auth file ${path}: ${(err as Error).message}`);
  }
  return (host: string) => {
    const h = host.toLowerCase();
    if (opts.explicit && opts.explicit.host.toLowerCase() === h) return opts.explicit.credential;
    return table.get(h === DOCKER_HUB_API ? DOCKER_HUB : h);
  };
}
