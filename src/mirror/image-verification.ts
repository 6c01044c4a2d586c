import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import yaml from 'js-yaml';
import type { TalosVersion } from './talos-version.js';
import { printable } from '../util/text.js';
import { UserInputError } from '../util/user-input.js';

/**
 * Talos's `ImageVerificationConfig` document (v1.13+) for the images a bundle
 * carries: one `publicKey` rule per source registry, holding the cluster's key
 * (the one `import --countersign-key` signed with), so nodes check every pull
 * offline. Talos reads `publicKey.certificate` as a PEM public key (PKIX), not
 * a certificate, whatever its name.
 */

/** The first release line with the document, and the first releases whose publicKey rules work offline. */
export const IMAGE_VERIFICATION_SINCE = { major: 1, minor: 13 } as const;
export const OFFLINE_PUBLIC_KEY_RULES = 'v1.13.8 and v1.14.0-beta.1';

/** The cluster's public key as Talos takes it: PKIX PEM, refused with one line when it is not one. */
export function readClusterKey(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UserInputError(
      `--image-verification ${printable(path)}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    );
  }
  try {
    if (!/-----BEGIN PUBLIC KEY-----/.test(text)) throw new Error('no BEGIN PUBLIC KEY block');
    return createPublicKey(text).export({ type: 'spki', format: 'pem' }).toString();
  } catch (err) {
    throw new UserInputError(
      `--image-verification ${printable(path)} is not a PEM public key (${printable((err as Error).message)}); give the .pub that keygen --type ecdsa-p256 wrote`,
    );
  }
}

/** Refuses a Talos version without the document, naming the version that brought it. */
export function requireImageVerification(version: TalosVersion | undefined): void {
  if (!version) return;
  const { major, minor } = IMAGE_VERIFICATION_SINCE;
  if (version.major < major || (version.major === major && version.minor < minor))
    throw new UserInputError(
      `--image-verification writes an ImageVerificationConfig document, which Talos reads from v${major}.${minor} (publicKey rules work offline from ${OFFLINE_PUBLIC_KEY_RULES}); --talos-version v${version.major}.${version.minor} has none`,
    );
}

/** The document, as YAML (every string quoted and escaped by js-yaml). */
export function imageVerificationDocument(registries: string[], publicKeyPem: string): string {
  const sources = [...new Set(registries)].sort();
  // Talos matches `*` across slashes (github.com/ryanuber/go-glob): every repository of the registry.
  const rules = sources.map((r) => ({ image: `${r}/*`, publicKey: { certificate: publicKeyPem } }));
  return yaml.dump({ apiVersion: 'v1alpha1', kind: 'ImageVerificationConfig', rules }, { lineWidth: -1 });
}
