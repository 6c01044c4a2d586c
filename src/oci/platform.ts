import type { Platform } from './descriptor.js';
import { UserInputError } from '../util/user-input.js';

export class PlatformError extends UserInputError {
  override name = 'PlatformError';
}

/** `os/arch[/variant]`, as `--platform` and Docker write it. */
export function parsePlatform(text: string): Platform {
  const parts = text.trim().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9._-]+$/i.test(p))) {
    throw new PlatformError(
      `invalid platform "${text}": expected os/arch or os/arch/variant, e.g. linux/amd64 or linux/arm/v7`,
    );
  }
  const [os, architecture, variant] = parts as [string, string, string?];
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function formatPlatform(p: Platform): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

/**
 * Whether an index entry is wanted under a `--platform` filter. A filter without
 * a variant takes every variant of that architecture (linux/arm takes v6 and v7),
 * which is what a user naming the architecture expects.
 */
export function platformMatches(filter: Platform, candidate: Platform): boolean {
  if (filter.os !== candidate.os || filter.architecture !== candidate.architecture) return false;
  return filter.variant === undefined || filter.variant === candidate.variant;
}

/**
 * Attestation manifests (BuildKit's `unknown/unknown` entries) describe another
 * child of the same index; they follow that child in or out of the bundle.
 */
export function attestationTarget(annotations: Record<string, string> | undefined): string | undefined {
  if (annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest') return undefined;
  return annotations['vnd.docker.reference.digest'];
}
