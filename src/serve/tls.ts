import { X509Certificate } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-file.js';
import { UserInputError } from '../util/user-input.js';

/**
 * `--tls-generate DIR`: a private CA and a server certificate it signs, for
 * the names and addresses nodes reach the server at. Written once; a restart
 * reuses them, and a new server certificate is issued under the same CA only
 * when the names change, so nodes that trust the CA keep working.
 *
 * certificates.ts issues them; this module decides when.
 */
export interface TlsMaterial {
  cert: string;
  key: string;
  caPem: string;
  /** What was written this time: nothing on a plain restart. */
  written: string[];
}

export const TLS_FILES = { caCert: 'ca.crt', caKey: 'ca.key', cert: 'server.crt', key: 'server.key' } as const;

export class TlsSetupError extends UserInputError {
  override name = 'TlsSetupError';
}

/** A host name or address a certificate may name: DNS labels or an IP literal, nothing else. */
export function isCertificateName(name: string): boolean {
  if (isIP(name)) return true;
  return (
    name.length <= 253 &&
    /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i.test(name)
  );
}

export async function tlsFromFolder(dir: string, names: string[]): Promise<TlsMaterial> {
  const bad = names.filter((n) => !isCertificateName(n));
  if (bad.length > 0)
    throw new TlsSetupError(`--advertise ${bad.join(', ')}: not a host name or IP address a certificate can name`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const written: string[] = [];
  const ca = (await readPair(dir, TLS_FILES.caCert, TLS_FILES.caKey)) ?? (await newCa(dir, written));
  const current = await readPair(dir, TLS_FILES.cert, TLS_FILES.key);
  const server = current && covers(current.cert, ca.cert, names) ? current : await newServer(dir, ca, names, written);
  return { cert: server.cert, key: server.key, caPem: ca.cert, written };
}

export interface Pair {
  cert: string;
  key: string;
}

async function readPair(dir: string, certName: string, keyName: string): Promise<Pair | undefined> {
  try {
    return { cert: await readFile(join(dir, certName), 'utf8'), key: await readFile(join(dir, keyName), 'utf8') };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new TlsSetupError(`${dir}: cannot read the TLS files (${(err as Error).message})`);
  }
}

/** Whether a certificate was issued by this CA, is valid for a month more, and names every one of `names`. */
function covers(certPem: string, caPem: string, names: string[]): boolean {
  try {
    const cert = new X509Certificate(certPem);
    if (!cert.checkIssued(new X509Certificate(caPem))) return false;
    if (Date.parse(cert.validTo) < Date.now() + 30 * 24 * 3600 * 1000) return false;
    const sans = new Set((cert.subjectAltName ?? '').split(', ').map((s) => s.replace(/^(DNS|IP Address):/, '')));
    return names.every((n) => sans.has(n));
  } catch {
    return false;
  }
}

async function newCa(dir: string, written: string[]): Promise<Pair> {
  const pair = (await certificates()).issueCa();
  await writePair(dir, TLS_FILES.caCert, TLS_FILES.caKey, pair, written);
  return pair;
}

async function newServer(dir: string, ca: Pair, names: string[], written: string[]): Promise<Pair> {
  const pair = (await certificates()).issueServer(ca, names);
  await writePair(dir, TLS_FILES.cert, TLS_FILES.key, pair, written);
  return pair;
}

/** Loaded only when a certificate is issued: node-forge costs start-up time and memory otherwise. */
function certificates(): Promise<typeof import('./certificates.js')> {
  return import('./certificates.js');
}

/** Each file published whole (util/atomic-file.ts); keys readable by the owner only. */
async function writePair(dir: string, certName: string, keyName: string, pair: Pair, written: string[]) {
  for (const [name, text, mode] of [
    [keyName, pair.key, 0o600],
    [certName, pair.cert, 0o644],
  ] as const) {
    await writeFileAtomic(join(dir, name), text, mode);
    written.push(join(dir, name));
  }
}
