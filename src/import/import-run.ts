import { printable } from '../util/text.js';
import type { RegistryClient } from '../registry/client.js';
import type { Repository } from '../registry/repository.js';
import type { CheckedFile } from '../bundle/open/structure.js';
import type { ImageSignatures } from '../signatures/check-images.js';
import type { ImportPlan, PlannedImage } from './plan.js';

export interface ImportEvents {
  planned?(work: { images: number; complete: number; uploads: number; uploadBytes: number; mounts: number }): void;
  bytes?(n: number): void;
  blobFailed?(digest: string, message: string): void;
  imageDone?(image: PlannedImage, status: ImageImportStatus): void;
  /** A blob cut across volumes cannot be completed yet: the parts this volume carries go in ahead. */
  partsStaged?(digest: string, parts: number, waitingFor: number[]): void;
}

export type ImageImportStatus = 'already present' | 'imported' | 'waiting' | 'failed' | 'not accepted' | 'unsigned';

/** How one image ended: its status, and why when it was not imported. */
export interface ImageOutcome {
  status: ImageImportStatus;
  reason?: string;
  cause?: 'bundle' | 'registry';
}

export interface ImportResult {
  /** `cause` of a failure: the bundle's content, or the registry (network, refusal). */
  images: Array<{ reference: string; target: string; digest: string } & ImageOutcome>;
  uploaded: { blobs: number; bytes: number };
  mounted: number;
  skipped: number;
  /** Whether blob payloads were read: a registry that already holds everything needs only the metadata. */
  readBundle: boolean;
  /** Blobs cut across volumes that this run could not complete: parts pushed ahead, volumes still needed. */
  staged: Array<{ digest: string; parts: number; waitingFor: number[] }>;
  /** With a signature policy: each image's verdict; those that fail it are `unsigned` above and pushed nothing. */
  signatures?: ImageSignatures[] | undefined;
}

/** What every phase of one import reads and adds to. */
export interface ImportRun {
  path: string;
  registry: string;
  plan: ImportPlan;
  concurrency: number;
  ev: ImportEvents;
  /** Where the tar holds each blob, from the structure check. */
  index: CheckedFile;
  result: ImportResult;
  /** The repositories the registry's catalog lists, or undefined when it could not be read whole. */
  listed: Set<string> | undefined;
  /** Configs and layers of images already complete in the registry, each with a repository holding it. */
  held: Map<string, Repository>;
  /** The handle on a repository of the target registry: one per name, so handles compare by identity. */
  repository(name: string): Repository;
  /** Whether a repository may hold anything yet: false when the catalog was read and does not list it. */
  mayHold(name: string): boolean;
}

/** Where each config and layer stands: found in phase 1, worked off in phase 2, read in phase 3. */
export interface BlobState {
  /** Which repositories still lack which config or layer. */
  needs: Map<string, Repository[]>;
  /** A repository of this registry already holding the blob: mount instead of upload. */
  holder: Map<string, Repository>;
  /** Blobs this run cannot complete, and the volumes that bring them. */
  waiting: Map<string, number[]>;
  failed: Map<string, { message: string; cause: 'bundle' | 'registry' }>;
}

export function startRun(
  path: string,
  client: RegistryClient,
  registry: string,
  plan: ImportPlan,
  index: CheckedFile,
  opts: { concurrency: number; events?: ImportEvents; listed: Set<string> | undefined },
): ImportRun {
  const handles = new Map<string, Repository>();
  const listed = opts.listed;
  return {
    path,
    registry,
    plan,
    concurrency: opts.concurrency,
    ev: opts.events ?? {},
    index,
    result: { images: [], uploaded: { blobs: 0, bytes: 0 }, mounted: 0, skipped: 0, readBundle: false, staged: [] },
    listed,
    held: new Map(),
    repository(name) {
      let repo = handles.get(name);
      if (!repo) handles.set(name, (repo = client.repository(registry, name)));
      return repo;
    },
    mayHold: (name) => listed === undefined || listed.has(name),
  };
}

/** An image's line in the result. */
export function resultEntry(run: ImportRun, p: PlannedImage, outcome: ImageOutcome): ImportResult['images'][number] {
  const { status, reason, cause } = outcome;
  return {
    reference: p.image.reference,
    target: `${run.registry}/${p.repository}${p.tag !== undefined ? `:${p.tag}` : `@${p.image.digest}`}`,
    digest: p.image.digest,
    status,
    ...(reason ? { reason } : {}),
    ...(cause ? { cause } : {}),
  };
}

/** A delta was imported into a registry that lacks what it was made against. */
export class MissingDependenciesError extends Error {
  override name = 'MissingDependenciesError';
  constructor(
    readonly digests: string[],
    plan: ImportPlan,
  ) {
    const users = (d: string) =>
      plan.images.filter((p) => p.blobs.includes(d)).map((p) => printable(p.image.reference));
    const shown = digests.slice(0, 5).map((d) => `  - ${d} (needed by ${users(d).join(', ')})`);
    super(
      `this delta bundle depends on ${digests.length} blob(s) the registry does not hold; nothing was pushed. Import the bundle it was made against first (or export a full bundle):\n${shown.join('\n')}${digests.length > 5 ? `\n  … and ${digests.length - 5} more` : ''}`,
    );
  }
}
