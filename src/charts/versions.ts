import semver from 'semver';

/**
 * Chart versions as Helm picks them (pkg/repo IndexFile.Get and the registry
 * client's tag matching, both built on Masterminds/semver): an exact version
 * string wins as written; otherwise the highest version the constraint
 * accepts. A constraint admits prereleases only when it names one itself, so
 * `1.x` never picks `1.3.0-rc.1` while `>=1.3.0-0` may; no constraint means the
 * highest stable version.
 */
export function pickVersion(available: readonly string[], wanted: string | undefined): string | undefined {
  if (wanted !== undefined && available.includes(wanted)) return wanted;
  const range = constraintOf(wanted ?? '*');
  if (!range) return undefined;
  let best: { text: string; version: semver.SemVer } | undefined;
  for (const text of available) {
    const version = parseChartVersion(text);
    if (!version || !range.test(version)) continue;
    if (!best || semver.gt(version, best.version)) best = { text, version };
  }
  return best?.text;
}

/** Whether `text` is a version or constraint this module understands. */
export function isVersionConstraint(text: string): boolean {
  return constraintOf(text) !== undefined;
}

/** Whether `text` names one version rather than a range. */
export function isExactVersion(text: string): boolean {
  return parseChartVersion(text) !== undefined && /^v?\d/.test(text);
}

/** A chart version: strict semver, or the short forms Masterminds accepts (`v1.2.3`, `1.2`, `1`). */
export function parseChartVersion(text: string): semver.SemVer | undefined {
  if (text.length > MAX_VERSION_LENGTH) return undefined;
  const strict = semver.parse(text, { loose: true });
  if (strict) return strict;
  const short = /^v?(\d+)(?:\.(\d+))?$/.exec(text);
  return short ? (semver.parse(`${short[1]}.${short[2] ?? '0'}.0`) ?? undefined) : undefined;
}

/** Longest version or constraint accepted: far above any real one. */
export const MAX_VERSION_LENGTH = 128;

/**
 * A Masterminds constraint as a node-semver range: `,` joins comparators
 * (AND) there, a space here; `||` is the same in both.
 */
function constraintOf(text: string): semver.Range | undefined {
  if (text.length > MAX_VERSION_LENGTH || text.trim() === '') return undefined;
  const spaced = text.replace(/\s*,\s*/g, ' ').trim();
  let range: semver.Range;
  try {
    range = new semver.Range(spaced, { loose: true });
  } catch {
    return undefined;
  }
  // Read from the text as written: node-semver's own desugaring adds `-0` to upper bounds (`1.x` is `<2.0.0-0`).
  const namesPrerelease = /(^|[\s<>=~^,|])v?\d+(\.\d+){0,2}-[0-9A-Za-z]/.test(spaced);
  return namesPrerelease ? new semver.Range(spaced, { loose: true, includePrerelease: true }) : range;
}

/** The OCI tag of a chart version: `+` is not allowed in a tag, and Helm writes it as `_`. */
export function tagOfVersion(version: string): string {
  return version.replace(/\+/g, '_');
}

/** The chart version an OCI tag stands for (`1.0.0_build.1` is `1.0.0+build.1`). */
export function versionOfTag(tag: string): string {
  return tag.replace(/_/g, '+');
}
