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
