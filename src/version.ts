import { readFileSync } from 'node:fs';

/**
 * Set by `npm run package` when it bundles the tool into one executable: there
 * is no package.json beside it, and none may be read from wherever it runs.
 */
declare const AIRGAP_BUNDLE_VERSION: string | undefined;

/** The package version, so the bundle records the version that wrote it and `--version` prints it. */
function packageVersion(): string {
  if (typeof AIRGAP_BUNDLE_VERSION === 'string') return AIRGAP_BUNDLE_VERSION;
  // Run from dist/ (or src/ under the test runner): package.json is one folder up.
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export const TOOL = { name: 'airgap-bundle', version: packageVersion() } as const;

/** What `--version --json` prints: what a reviewer checks first about a tool before trusting it. */
export interface VersionReport {
  name: string;
  version: string;
  /** The bundle format this version writes (and the newest it reads). */
  bundleFormat: string;
  bundleFormatVersion: number;
  /** The Node.js that runs the tool: the one inside a single executable, or the one on the machine. */
  node: string;
  /** True for the single executable (`npm run package`), false when run by an installed Node. */
  singleExecutable: boolean;
  /** `linux-x64`, `linux-arm64`: the platform this run is on, as the executables are named. */
  platform: string;
}

export async function versionReport(): Promise<VersionReport> {
  const [{ BUNDLE_FORMAT, FORMAT_VERSION }, { isSea }] = await Promise.all([
    import('./bundle/format.js'),
    import('node:sea'),
  ]);
  return {
    name: TOOL.name,
    version: TOOL.version,
    bundleFormat: BUNDLE_FORMAT,
    bundleFormatVersion: FORMAT_VERSION,
    node: process.versions.node,
    singleExecutable: isSea(),
    platform: `${process.platform}-${process.arch}`,
  };
}
