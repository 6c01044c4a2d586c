import { readFileSync } from 'node:fs';

/** Read from package.json at run time so the bundle records the version that wrote it. */
function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export const TOOL = { name: 'airgap-bundle', version: packageVersion() } as const;
