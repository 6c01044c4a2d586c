/**
 * A Helm chart as this tool reads it: its Chart.yaml, its values, its own
 * files and its subcharts, all validated and bounded where they were read
 * (src/charts/load.ts). Everything else about charts (where they come from,
 * how they are carried, which images they deploy) works on these types.
 */

/** One entry of Chart.yaml's `dependencies` (apiVersion v2) or requirements.yaml (v1). */
export interface ChartDependency {
  name: string;
  /** A version or a semver range, as written. */
  version: string;
  /** `https://…`, `oci://…`, `file://…`, `@alias`/`alias:` of a configured repository, or absent (vendored only). */
  repository?: string;
  condition?: string;
  tags?: string[];
  alias?: string;
}

/** Chart.yaml, the fields this tool uses, checked. */
export interface ChartMetadata {
  /** `v1` or `v2`. */
  apiVersion: string;
  name: string;
  /** A semver version (`+` kept). */
  version: string;
  appVersion?: string;
  /** `application` or `library`. */
  type?: string;
  annotations: Record<string, string>;
  dependencies: ChartDependency[];
}

/** A chart read into memory, bounded. */
export interface LoadedChart {
  metadata: ChartMetadata;
  /** values.yaml, parsed with bounds; {} when absent */
  values: Record<string, unknown>;
  /** every file of the chart itself, path relative to its root ('templates/deployment.yaml', 'images.lock'); subcharts' files excluded */
  files: ReadonlyMap<string, Buffer>;
  /** charts/ subcharts (from .tgz or folders inside charts/), loaded the same way; vendored dependencies included once resolved */
  subcharts: LoadedChart[];
}
