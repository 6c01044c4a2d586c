import { createHash, timingSafeEqual } from 'node:crypto';

export interface BasicCredentials {
  username: string;
  password: string;
}

const digestOf = (s: string) => createHash('sha256').update(s).digest();

/**
 * Whether an Authorization header carries these credentials. Compared as
 * hashes in constant time, so neither the length nor a prefix leaks.
 */
export function authorized(header: string | undefined, creds: BasicCredentials): boolean {
  if (!header || !/^basic /i.test(header)) return false;
  const given = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  return timingSafeEqual(digestOf(given), digestOf(`${creds.username}:${creds.password}`));
}

export const CHALLENGE = 'Basic realm="airgap-bundle"';
