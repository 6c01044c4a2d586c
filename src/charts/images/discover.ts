/**
 * The images one chart deploys, from every method that can see them, each
 * with how it was found: the chart's annotations and lock files, Helm's own
 * rendering (`--render`), or else the image-shaped values; what is switched
 * off with the values given kept apart; empty tags settled against the
 * registry; and a warning wherever the templates name images nothing
 * explained. See docs/charts-images.md for what each method can and cannot see.
 */
import type { LoadedChart } from '../chart.js';
import { formatReference, parseReference, ReferenceError } from '../../reference/reference.js';
import type { RegistryClient } from '../../registry/client.js';
import { printable } from '../../util/text.js';
import { imagesFromAnnotations } from './annotations.js';
import { chartTree, type ChartNode } from './chart-tree.js';
import { MAX_FINDINGS_PER_CHART, type ImageFinding } from './finding.js';
import { imagesFromLockFiles } from './lock-files.js';
import { renderedImages } from './render.js';
import { resolveTagCandidates } from './tag-candidates.js';
import { imageMentions } from './template-mentions.js';
import { imagesFromValues } from './values-images.js';
import { coalesce, type Values } from './values.js';

export interface DiscoveryOptions {
  /** The user's values files, merged in order (see `mergeValueFiles`). */
  userValues: Values;
  /** Their paths, for `helm template`. */
  valuesFiles: readonly string[];
  /** Render with helm instead of reading the values. */
  render: boolean;
  kubeVersion?: string;
  /** Settle empty tags of images that are off by default too (they are carried). */
  allImages: boolean;
  /** Asked which tag exists when a tag is empty; undefined: not asked (warned). */
  client?: RegistryClient;
}

/** One image of a chart, validated, with where it came from. */
export interface ChartImage {
  /** The normalised reference. */
  image: string;
  /** `chart NAME VERSION[ > SUBCHART]: HOW`, escaped for a terminal. */
  from: string;
  /** Why it is off with these values; absent when it is deployed. */
  off?: string;
}

export interface ChartImages {
  /** `NAME VERSION`, escaped. */
  chart: string;
  images: ChartImage[];
  warnings: string[];
}

interface Found {
  node: ChartNode;
  finding: ImageFinding;
}

/** The annotation, lock-file and (unless rendered) values findings of one chart of the tree. */
function findingsOf(node: ChartNode, withValues: boolean, warnings: string[]): ImageFinding[] {
  const at = (w: string) => `${node.path === '' ? '' : `${node.path}: `}${w}`;
  const annotations = imagesFromAnnotations(node.chart.metadata.annotations, {
    values: node.values,
    subchartOff: (name) => node.childOff.get(name),
  });
  const locks = imagesFromLockFiles(node.chart.files);
  const values = withValues
    ? imagesFromValues(node.values, {
        skip: new Set([...node.childScopes, ...(node.path === '' ? [] : ['global'])]),
        appVersion: node.chart.metadata.appVersion,
      })
    : { findings: [], warnings: [] };
  for (const w of [...annotations.warnings, ...locks.warnings, ...values.warnings]) warnings.push(at(w));
  const all = [...annotations.findings, ...locks.findings, ...values.findings];
  return node.off ? all.map((f) => ({ ...f, off: node.off })) : all;
}

function normalised(image: string): string | undefined {
  try {
    return formatReference(parseReference(image));
  } catch (err) {
    if (err instanceof ReferenceError) return undefined;
    throw err;
  }
}

/** Warnings for templates that name images nothing found: per chart of the tree, and per literal image. */
function unexplained(nodes: ChartNode[], found: Found[], listed: Set<string>, warnings: string[]): void {
  for (const node of nodes) {
    if (node.chart.metadata.type === 'library') continue;
    const mentions = imageMentions(node.chart.files);
    if (mentions.length === 0) continue;
    const where = node.path === '' ? 'its templates' : `subchart ${node.path}`;
    if (!found.some((f) => f.node === node) && !node.off) {
      const first = mentions[0]!;
      warnings.push(
        `${where} mention image: (${first.file}:${first.line}${mentions.length > 1 ? ` and ${mentions.length - 1} more` : ''}) but no annotation, lock file or value names one; render with --render, or list the images with -f`,
      );
    }
    for (const m of mentions) {
      const ref = m.literal !== undefined ? normalised(m.literal) : undefined;
      if (ref !== undefined && !listed.has(ref))
        warnings.push(
          `${m.file}:${m.line}${node.path === '' ? '' : ` (subchart ${node.path})`} names ${m.literal} in the template itself; it is not in the list (render with --render, or add it with -f)`,
        );
    }
  }
}

/** Findings checked as references; what does not parse is a warning, never a failure of the run. */
function validated(label: string, found: Found[], warnings: string[]): ChartImage[] {
  const seen = new Set<string>();
  const out: ChartImage[] = [];
  for (const { node, finding } of found) {
    const scope = node.path === '' ? '' : ` > ${node.path}`;
    const from = printable(`chart ${label}${scope}: ${finding.how}`, 300);
    let image: string;
    try {
      image = formatReference(parseReference(finding.image));
    } catch (err) {
      if (!(err instanceof ReferenceError)) throw err;
      warnings.push(`${from}: "${printable(finding.image)}" is not an image reference (${err.reason}); skipped`);
      continue;
    }
    const key = `${image}\n${from}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ image, from, ...(finding.off ? { off: printable(finding.off) } : {}) });
  }
  return out;
}

/** An image that is deployed is not also listed as off (a component that is off may share it with one that is on). */
function withoutOffDuplicates(images: ChartImage[]): ChartImage[] {
  const deployed = new Set(images.filter((i) => !i.off).map((i) => i.image));
  return images.filter((i) => !i.off || !deployed.has(i.image));
}

/** Every image `chart` deploys with `opts`' values, and those it would with its components switched on. */
export async function discoverChartImages(
  chart: LoadedChart,
  tgz: Buffer,
  opts: DiscoveryOptions,
): Promise<ChartImages> {
  const label = `${chart.metadata.name} ${chart.metadata.version}`;
  const warnings: string[] = [];
  const nodes = chartTree(chart, coalesce(chart.values, opts.userValues), warnings);
  let found: Found[] = [];
  for (const node of nodes)
    for (const finding of findingsOf(node, true, warnings)) {
      // Rendered, the values only add what Helm did not render because it is switched off.
      if (opts.render && !finding.off && finding.how.startsWith('values:')) continue;
      found.push({ node, finding });
    }
  if (opts.render)
    for (const finding of await renderedImages(tgz, printable(label), opts.valuesFiles, opts.kubeVersion))
      found.push({ node: nodes[0]!, finding });
  if (found.length > MAX_FINDINGS_PER_CHART) {
    warnings.push(`more than ${MAX_FINDINGS_PER_CHART} images; the rest was not read`);
    found = found.slice(0, MAX_FINDINGS_PER_CHART);
  }
  found = await settleTags(found, opts, warnings);
  const images = withoutOffDuplicates(validated(printable(label), found, warnings));
  if (!opts.render) unexplained(nodes, found, new Set(images.map((i) => i.image)), warnings);
  return { chart: printable(label), images, warnings: warnings.map((w) => printable(`chart ${label}: ${w}`, 600)) };
}

/** Findings whose empty tags are settled at once, at most. */
const SETTLE_PARALLEL = 8;

/** Empty tags settled against the registry, for the images that will be carried. */
async function settleTags(found: Found[], opts: DiscoveryOptions, warnings: string[]): Promise<Found[]> {
  const out: Found[] = [];
  for (let i = 0; i < found.length; i += SETTLE_PARALLEL) {
    const batch = found.slice(i, i + SETTLE_PARALLEL);
    const settled = await Promise.all(
      batch.map((f) =>
        f.finding.off && !opts.allImages ? [f.finding] : resolveTagCandidates(f.finding, opts.client, warnings),
      ),
    );
    batch.forEach((f, j) => {
      for (const finding of settled[j]!) out.push({ node: f.node, finding });
    });
  }
  return out;
}
