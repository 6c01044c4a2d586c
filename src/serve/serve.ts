import { openCheckedFile } from '../bundle/open/structure.js';
import { BundleFormatError } from '../bundle/reader.js';
import type { RepositoryMapping } from '../reference/mapping.js';
import type { SignatureOptions } from '../signatures/check-images.js';
import type { CountersignKey } from '../signatures/countersign.js';
import { verifyBundles } from '../verify/verify.js';
import { BlobHealth } from './blob-health.js';
import { ServedContent } from './content.js';
import { ServedFiles } from './files.js';
import { loadServedCharts } from './charts.js';
import { startServer, type RunningServer, type ServerOptions } from './server.js';
import { assembleUnits, type ServedUnit } from './units.js';
import type { ServedSignatures } from './countersign.js';

export interface ServeRequest extends Omit<ServerOptions, 'tls'> {
  bundles: string[];
  mapping: RepositoryMapping;
  tls?: { cert: string; key: string };
  /** Check every byte of every bundle before serving (`--verify`). */
  verifyFirst: boolean;
  /** Every image must satisfy this policy, checked offline at start (refused otherwise, nothing served). */
  signatures?: SignatureOptions;
  /** With `signatures`: each verified image is served with the cluster's signature made with this key. */
  countersignKey?: CountersignKey;
  warn: (line: string) => void;
}

export interface Serving {
  server: RunningServer;
  content: ServedContent;
  units: ServedUnit[];
  /** From the first byte read to listening. */
  startMs: number;
  /** With a signature policy: what was checked, verified and countersigned at start. */
  signatures?: ServedSignatures;
}

/**
 * Starts serving: reads each bundle's metadata and tar headers, refuses what
 * cannot be served together, optionally verifies every byte, then listens.
 * Blob bytes are checked as they are served.
 */
export async function serveBundles(req: ServeRequest): Promise<Serving> {
  const started = performance.now();
  const loaded = [];
  for (const path of req.bundles) loaded.push(await openCheckedFile(path, 'it is not served'));
  const { units, blobs } = assembleUnits(loaded);
  if (req.verifyFirst) for (const u of units) await verifyUnit(u, loaded);
  const content = new ServedContent(units, blobs, req.mapping);
  const signatures = req.signatures
    ? await (
        await import('./countersign.js')
      ).checkServedSignatures(loaded, units, content, req.signatures, req.countersignKey)
    : undefined;
  const files = new ServedFiles(units, blobs);
  const charts = await loadServedCharts(
    units.flatMap((u) => u.metadata.images),
    blobs,
  );
  const server = await startServer({ content, files, charts, health: new BlobHealth(), warn: req.warn }, req);
  return { server, content, units, startMs: performance.now() - started, ...(signatures ? { signatures } : {}) };
}

async function verifyUnit(unit: ServedUnit, loaded: Array<{ path: string; metadata: { volumes?: { set: string } } }>) {
  const set = unit.metadata.volumes?.set;
  const files = set ? loaded.filter((l) => l.metadata.volumes?.set === set).map((l) => l.path) : [unit.label];
  const report = await verifyBundles(files);
  if (report.ok) return;
  const broken = report.images.filter((i) => i.status !== 'intact' && i.status !== 'needs other volumes').length;
  const first = report.problems[0] ?? `${report.blobs.damaged} damaged and ${report.blobs.missing} missing blobs`;
  throw new BundleFormatError(
    `${unit.label} failed --verify (${first}; ${broken} image(s) affected), so nothing is served; \`airgap-bundle verify\` lists every problem`,
  );
}
