import type { ArgumentsCamelCase, Argv } from 'yargs';
import { readMetadata } from '../bundle/reader.js';
import { carriedBytes, type BundleMetadata } from '../bundle/format.js';
import { printableList, table } from '../ui/format.js';
import { formatBytes } from '../util/bytes.js';
import { printOut, writeJson } from '../ui/output.js';
import { printable } from '../util/text.js';
import { outputOptions, type OutputArgs } from './output-options.js';
import { carriedFiles } from '../files/carried-files.js';

interface InspectArgs extends OutputArgs {
  bundle: string;
}

export const command = 'inspect <bundle>';
export const describe =
  "List a bundle's images, platforms and sizes, and the charts and files it carries (reads only the metadata: instant)";

export function builder(y: Argv): Argv<InspectArgs> {
  return outputOptions(y)
    .positional('bundle', { type: 'string', demandOption: true, describe: 'Bundle tar written by export' })
    .example('$0 inspect talos.tar', 'What is inside, at a glance')
    .example('$0 inspect talos.tar --json', 'The same as data') as unknown as Argv<InspectArgs>;
}

export function summarize(m: BundleMetadata) {
  const total = carriedBytes(m.blobs);
  const external = m.blobs.filter((b) => b.external);
  const perImage = m.images.reduce((s, im) => s + im.bytes, 0) - external.reduce((s, b) => s + b.size, 0);
  const artifactsOf = groupArtifacts(m.images);
  const carried = m.images.filter((im) => im.carried);
  return {
    tool: m.tool,
    formatVersion: m.formatVersion,
    ...(m.created ? { created: m.created } : {}),
    platformFilter: m.platforms,
    totalBytes: total,
    sharedBytesSaved: Math.max(0, perImage - total),
    blobs: m.blobs.length - external.length,
    ...(m.delta
      ? {
          delta: {
            against: m.delta.against,
            leftOut: external.length,
            leftOutBytes: external.reduce((s, b) => s + b.size, 0),
          },
        }
      : {}),
    images: m.images
      .filter((im) => !im.carried)
      .map((im) => ({
        reference: im.reference,
        digest: im.digest,
        mediaType: im.mediaType,
        bytes: im.bytes,
        platforms: im.platforms.filter((p) => p.carried).map((p) => p.platform),
        absentPlatforms: im.platforms.filter((p) => !p.carried).map((p) => p.platform),
        ...(im.artifact
          ? { artifactOf: im.artifact.of, artifactKind: im.artifact.kind, subject: im.artifact.subject }
          : {}),
        artifacts: artifactsOf.get(im.reference) ?? [],
        ...(im.signed ? { signed: im.signed } : {}),
      })),
    charts: carried
      .filter((im) => im.carried!.kind === 'chart')
      .map((im) => ({
        name: im.carried!.name,
        version: im.carried!.version,
        ...(im.carried!.appVersion !== undefined ? { appVersion: im.carried!.appVersion } : {}),
        source: im.carried!.source,
        reference: im.reference,
        digest: im.digest,
        bytes: im.bytes,
      })),
    // A file is listed as `files` writes it out: its one layer, and its own sha256.
    files: carriedFiles(m).map((f) => ({
      name: f.name,
      source: f.source,
      size: f.size,
      sha256: f.digest.slice('sha256:'.length),
      mode: f.mode.toString(8).padStart(4, '0'),
    })),
    ...(m.trustedRoot ? { trustedRoot: m.trustedRoot.source } : {}),
  };
}

/** The signer cell: identity and issuer (keyless) or key fingerprint, and the log index. */
function signerCell(signed: NonNullable<BundleMetadata['images'][number]['signed']>): string {
  const who = signed.issuer ? `${signed.signer} (${signed.issuer})` : signed.signer;
  return signed.logIndex !== undefined ? `${who} log ${signed.logIndex}` : who;
}

type ArtifactSummary = { kind: string; reference: string; subject: string };

/** Each image's artifacts, grouped in one pass (a scan per image would be quadratic in the image count). */
function groupArtifacts(images: BundleMetadata['images']): Map<string, ArtifactSummary[]> {
  const out = new Map<string, ArtifactSummary[]>();
  for (const a of images) {
    if (!a.artifact) continue;
    const list = out.get(a.artifact.of) ?? [];
    list.push({ kind: a.artifact.kind, reference: a.reference, subject: a.artifact.subject });
    out.set(a.artifact.of, list);
  }
  return out;
}

/** The charts and the files, each a table of its own after the images; none when the bundle carries none. */
function carriedTables(s: ReturnType<typeof summarize>): string[] {
  const out: string[] = [];
  if (s.charts.length > 0) {
    const rows = [['CHART', 'VERSION', 'APP VERSION', 'DIGEST', 'SOURCE']];
    for (const c of s.charts)
      rows.push([c.name, c.version ?? '-', c.appVersion ?? '-', c.digest.slice(0, 19), c.source]);
    out.push(table(rows));
  }
  if (s.files.length > 0) {
    const rows = [['FILE', 'SIZE', 'SHA256', 'SOURCE']];
    for (const f of s.files) rows.push([f.name, formatBytes(f.size), f.sha256.slice(0, 16), f.source]);
    out.push(table(rows));
  }
  return out;
}

export async function handler(argv: ArgumentsCamelCase<InspectArgs>): Promise<void> {
  const s = summarize(await readMetadata(argv.bundle));
  if (argv.json) {
    writeJson(s);
    return;
  }
  // Every string below but the tool's own words comes from the bundle: escaped and bounded by
  // printable (here, or by table() for cells) so that it stays one inert line.
  const signers = s.images.some((im) => im.signed);
  const rows = [['IMAGE', 'DIGEST', 'TYPE', 'SIZE', 'PLATFORMS', ...(signers ? ['SIGNED BY'] : [])]];
  for (const im of s.images) {
    if (im.artifactOf) continue;
    const type = im.mediaType.includes('docker')
      ? im.mediaType.includes('list')
        ? 'docker list'
        : 'docker'
      : im.mediaType.includes('index')
        ? 'oci index'
        : 'oci';
    const plats = [...im.platforms, ...im.absentPlatforms.map((p) => `-${p}`)].join(' ') || '-';
    const signer = signers ? [im.signed ? signerCell(im.signed) : '-'] : [];
    rows.push([im.reference, im.digest.slice(0, 19), type, formatBytes(im.bytes), plats, ...signer]);
    for (const a of im.artifacts)
      rows.push([
        `  + ${a.kind}`,
        a.reference.slice(a.reference.lastIndexOf('/') + 1),
        '',
        '',
        `for ${a.subject.slice(0, 19)}`,
        ...(signers ? [''] : []),
      ]);
  }
  const lines = [
    [table(rows), ...carriedTables(s)].join('\n\n'),
    '',
    `${s.images.length} images${s.charts.length ? `, ${s.charts.length} charts` : ''}${s.files.length ? `, ${s.files.length} files` : ''}, ${s.blobs} blobs, ${formatBytes(s.totalBytes)} (${formatBytes(s.sharedBytesSaved)} saved by shared layers)`,
    `written by ${printable(s.tool.name)} ${printable(s.tool.version)}, bundle format ${s.formatVersion}${s.created ? `, created ${printable(s.created)}` : ''}${s.platformFilter ? `, platforms ${printableList(s.platformFilter)}` : ', all platforms'}`,
    s.delta
      ? `delta against ${printableList(s.delta.against)}: ${s.delta.leftOut} blobs (${formatBytes(s.delta.leftOutBytes)}) left out, expected in the target registry`
      : '',
    s.images.some((im) => im.absentPlatforms.length) ? '(-os/arch: platform listed by the index but not carried)' : '',
    s.trustedRoot ? `signatures verified at export against ${printable(s.trustedRoot)}, carried in the bundle` : '',
  ];
  printOut(`${lines.filter((l, i) => l !== '' || i === 1).join('\n')}\n`);
}
