// Injected into the bundled CLI (see package-bundle.ts): what `import.meta.url` stands for in CommonJS.
// In a single executable `__filename` is the executable itself (process.execPath).
import { pathToFileURL } from 'node:url';

export const airgapBundleImportMetaUrl = pathToFileURL(__filename).href;
