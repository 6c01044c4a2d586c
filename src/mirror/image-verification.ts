import { createPublicKey } from 'node:crypto';
import { CARRIED_REGISTRY } from '../reference/mapping.js';
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

/** The document as an object, for a patch that serialises its documents together. */
export function imageVerificationConfig(registries: string[], publicKeyPem: string): Record<string, unknown> {
  // Charts and files are no images a node pulls: no rule for them.
  const sources = [...new Set(registries)].filter((r) => r !== CARRIED_REGISTRY).sort();
  // Talos matches `*` across slashes (github.com/ryanuber/go-glob): every repository of the registry.
  const rules = sources.map((r) => ({ image: `${r}/*`, publicKey: { certificate: publicKeyPem } }));
  return { apiVersion: 'v1alpha1', kind: 'ImageVerificationConfig', rules };
}

/** The document, as YAML (every string quoted and escaped by js-yaml). */
export function imageVerificationDocument(registries: string[], publicKeyPem: string): string {
  return yaml.dump(imageVerificationConfig(registries, publicKeyPem), { lineWidth: -1 });
}

/**
 * `--image-verification KEY` for a Talos patch: the key read and checked, the
 * version checked, and the note on which releases enforce it offline; one
 * line naming the flag when something is wrong.
 */
export function verificationFor(
  keyFile: string,
  registries: string[],
  version: TalosVersion | undefined,
  note: (line: string) => void,
): Record<string, unknown> {
  requireImageVerification(version);
  if (registries.length === 0)
    throw new UserInputError('--image-verification needs the source registries: give --bundle or --source-registry');
  const config = imageVerificationConfig(registries, readClusterKey(keyFile));
  const { major, minor } = IMAGE_VERIFICATION_SINCE;
  note(
    `nodes enforce the ImageVerificationConfig from Talos v${major}.${minor}; its publicKey rules work offline from ${OFFLINE_PUBLIC_KEY_RULES}`,
  );
  return config;
}
