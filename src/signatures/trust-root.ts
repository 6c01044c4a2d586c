import { readFileSync } from 'node:fs';
import seeds from '@sigstore/tuf/seeds.json' with { type: 'json' };
import { printable } from '../util/text.js';
import { UserInputError } from '../util/user-input.js';
import { parseTrustedRoot, type TrustRoot } from './verify-signature.js';

/**
 * The Sigstore trusted root a keyless signature is checked against: a file
 * the operator gives (`--trusted-root`), else the public-good root as
 * @sigstore/tuf ships it inside the package, read offline.
 */

const PUBLIC_GOOD_MIRROR = 'https://tuf-repo-cdn.sigstore.dev';
const MAX_ROOT_BYTES = 1024 * 1024;

export function loadTrustRoot(file: string | undefined): TrustRoot {
  if (file === undefined) return embeddedRoot();
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new UserInputError(
      `cannot read the trusted root ${printable(file)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  if (bytes.length > MAX_ROOT_BYTES) throw new UserInputError(`${printable(file)}: a trusted root of more than 1 MiB`);
  try {
    return parseTrustedRoot(bytes, `--trusted-root ${printable(file)}`);
  } catch (err) {
    throw new UserInputError((err as Error).message);
  }
}

/**
 * The root the bundle carries, when it may be trusted: only when the bundle's
 * own signature was verified (`--public-key`), since whoever alters an
 * unsigned bundle could bring their own CA and forge keyless signatures.
 * Returns why it is not used otherwise, for the report.
 */
export function carriedRoot(
  carried: { source: string; json: string } | undefined,
  signedBy: string | undefined,
): { root?: TrustRoot; note?: string } {
  if (!carried) return {};
  if (signedBy === undefined)
    return {
      note: "the bundle carries the trusted root export used, but it is not used: the bundle's signature was not checked (--public-key)",
    };
  return {
    root: parseTrustedRoot(
      Buffer.from(carried.json),
      `the root carried in the bundle (${printable(carried.source, 200)}; the bundle is signed by ${signedBy})`,
    ),
  };
}

function embeddedRoot(): TrustRoot {
  const target = (seeds as Record<string, { targets?: Record<string, string> }>)[PUBLIC_GOOD_MIRROR]?.targets?.[
    'trusted_root.json'
  ];
  if (!target) throw new Error('the embedded Sigstore trusted root is missing from @sigstore/tuf');
  return parseTrustedRoot(Buffer.from(target, 'base64'), 'the public-good root shipped with @sigstore/tuf (embedded)');
}
