import yaml from 'js-yaml';
import { UserInputError } from '../util/user-input.js';

export interface FoundImage {
  image: string;
  /** Where in the document: `Deployment/kube-system/coredns containers[coredns]`. */
  where: string;
}

export class ManifestError extends UserInputError {
  override name = 'ManifestError';
}

/** Where each workload kind keeps its pod spec. */
const POD_SPEC_PATHS: Record<string, string[]> = {
  Pod: ['spec'],
  PodTemplate: ['template', 'spec'],
  Deployment: ['spec', 'template', 'spec'],
  StatefulSet: ['spec', 'template', 'spec'],
  DaemonSet: ['spec', 'template', 'spec'],
  ReplicaSet: ['spec', 'template', 'spec'],
  ReplicationController: ['spec', 'template', 'spec'],
  Job: ['spec', 'template', 'spec'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
};

const CONTAINER_LISTS = ['initContainers', 'containers', 'ephemeralContainers'] as const;

/** The value at `path` inside parsed YAML, or undefined when any step is missing. */
export function dig(obj: unknown, path: string[]): unknown {
  let cur = obj;
  for (const key of path) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function imagesOfObject(doc: unknown, out: FoundImage[]): void {
  if (typeof doc !== 'object' || doc === null) return;
  const d = doc as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown }; items?: unknown };
  if (typeof d.kind !== 'string') return;
  if (d.kind === 'List' || d.kind.endsWith('List')) {
    if (Array.isArray(d.items)) for (const item of d.items) imagesOfObject(item, out);
    return;
  }
  const path = POD_SPEC_PATHS[d.kind];
  if (!path) return;
  const spec = dig(doc, path);
  const name = [d.metadata?.namespace, d.metadata?.name].filter((x) => typeof x === 'string').join('/');
  for (const list of CONTAINER_LISTS) {
    const containers = dig(spec, [list]);
    if (!Array.isArray(containers)) continue;
    for (const c of containers) {
      const image = (c as { image?: unknown })?.image;
      const cname = (c as { name?: unknown })?.name;
      if (typeof image === 'string' && image.trim() !== '') {
        out.push({
          image: image.trim(),
          where: `${d.kind}/${name || '?'} ${list}[${typeof cname === 'string' ? cname : '?'}]`,
        });
      }
    }
  }
}

/** Every document of a multi-document YAML file; a parse error names the file. */
export function loadDocuments(text: string, source: string): unknown[] {
  try {
    return yaml.loadAll(text, undefined, { filename: source });
  } catch (err) {
    throw new ManifestError(`${source}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
}

/**
 * Every container image named by Kubernetes YAML (multi-document): Pods, every
 * workload kind that embeds a pod template, and Lists of those; containers,
 * initContainers and ephemeralContainers.
 */
export function imagesFromManifests(text: string, source: string): FoundImage[] {
  const docs = loadDocuments(text, source);
  const out: FoundImage[] = [];
  for (const doc of docs) imagesOfObject(doc, out);
  return out;
}
