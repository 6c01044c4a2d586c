import type { ArgumentsCamelCase, Argv } from 'yargs';
import { statSync } from 'node:fs';
import { verifyBundles, type VerifyReport } from '../verify/verify.js';
import { Reporter } from '../ui/reporter.js';
import { printableList, table } from '../ui/format.js';
import { formatBytes } from '../util/bytes.js';
import { printErr } from '../ui/output.js';
import { printable } from '../util/text.js';
import { CheckFailed, ExitCode, UsageError } from './errors.js';
import { outputOptions, type OutputArgs } from './output-options.js';
import { buildClient, registryOptions, type RegistryArgs } from './registry-options.js';
import {
  printRegistryCheck,
  explicitCredential,
  mappingFrom,
  targetOptions,
  validateRegistry,
  type TargetArgs,
} from './target-options.js';
import { readHead, readMetadata, readParsedMetadata, type ParsedMetadata } from '../bundle/reader.js';
import { requireSignature } from './signing.js';
import {
  preferCarriedRoot,
  printSignatures,
  signatureOptions,
  signatureOptionsFrom,
  unsignedImages,
  type SignatureArgs,
} from './signature-options.js';
import { planImport } from '../import/plan.js';
import { checkRegistry } from '../import/registry-check.js';

interface VerifyArgs extends OutputArgs, RegistryArgs, Partial<TargetArgs>, SignatureArgs {
  bundle: string[];
  'public-key'?: string;
  deep: boolean;
}

export const command = 'verify <bundle..>';
export const describe = 'Prove a bundle is complete and intact, offline, in one read';

export function builder(y: Argv): Argv<VerifyArgs> {
  return signatureOptions(targetOptions(outputOptions(registryOptions(y)), false))
    .positional('bundle', {
      type: 'string',
      array: true,
      demandOption: true,
      describe: 'Bundle tar written by export, or volumes of one set (any subset, any order)',
    })
    .option('public-key', {
      type: 'string',
      describe: 'Require a valid signature by this Ed25519 public key (exit 4 otherwise)',
    })
    .option('deep', {
      type: 'boolean',
      default: false,
      describe: 'With --registry: also check every child manifest and blob',
    })
    .example('$0 verify talos.tar', 'Offline: check every blob, every image and the .sha256 sidecar')
    .example('$0 verify talos.tar --json | jq .images', 'The same report as data')
    .example('$0 verify talos.vol001.tar talos.vol002.tar', 'Volumes of a set: which are present, missing or damaged')
    .example(
      '$0 verify talos.tar --verify-signatures policy.yaml',
      "Offline: every image's carried signature against the policy (keyless and key)",
    )
    .example(
      '$0 verify talos.tar --registry 10.5.0.1:6000 --plain-http',
      'Check that a registry serves every tag and digest of the bundle',
    )
    .epilog(
      'Without --registry the bundle itself is checked, offline. With --registry the registry is checked against the bundle (catalog, every tag and digest; --deep for every blob). ' +
        'Exit codes: 0 intact / matching, 3 damaged, incomplete or not matching (the report says which images are still usable), 4 signature missing or invalid (--public-key), 5 an image fails the signature policy (--verify-signatures), 2 usage error, 1 other failure.',
    ) as unknown as Argv<VerifyArgs>;
}

async function verifyRegistry(argv: ArgumentsCamelCase<VerifyArgs>, reporter: Reporter): Promise<void> {
  const registry = validateRegistry(argv.registry!);
  const bundle = argv.bundle[0]!;
  const metadata = await readMetadata(bundle);
  const plan = planImport(metadata, mappingFrom(argv));
  const explicit = await explicitCredential(argv, registry);
  const { client, close } = buildClient(argv, explicit ? { explicit } : {});
  try {
    const check = await checkRegistry(client, registry, plan, { deep: argv.deep, concurrency: argv.concurrency });
    reporter.result(check);
    printRegistryCheck(check, reporter);
    if (!check.ok)
      throw new CheckFailed(
        `${registry} does not match ${printable(bundle)}: ${check.rows.filter((r) => r.status !== 'ok').length} references missing or different${check.unlisted.length ? `, ${check.unlisted.length} repositories not in the catalog` : ''}`,
      );
  } finally {
    close();
  }
}

export async function handler(argv: ArgumentsCamelCase<VerifyArgs>): Promise<void> {
  const reporter = new Reporter({ quiet: argv.quiet, json: argv.json, tty: process.stderr.isTTY === true });
  // A policy or trust root that cannot be used is one line before any bundle is read.
  let signatures = await signatureOptionsFrom(argv);
  // What a first read parsed, the scan takes again when the file still holds the same bytes.
  const parsed = new Map<string, ParsedMetadata>();
  // A signature is checked first: an untrusted bundle is not worth reading further.
  let signedBy: string | undefined;
  if (argv['public-key']) {
    for (const b of argv.bundle) {
      const head = await readHead(b);
      signedBy = await requireSignature(b, argv['public-key'], head.bytes, head.signature);
      reporter.info(`${printable(b)}: signature valid (key ${printable(signedBy)})`);
      parsed.set(b, head);
    }
  }
  if (signatures) {
    // Unusable metadata is reported by the scan below (one line, or the --json report).
    const first = parsed.get(argv.bundle[0]!) ?? (await readParsedMetadata(argv.bundle[0]!).catch(() => undefined));
    if (first) parsed.set(argv.bundle[0]!, first);
    signatures = await preferCarriedRoot(signatures, argv, first?.metadata.trustedRoot, signedBy, (l) =>
      reporter.info(`note: ${l}`),
    );
  }
  if (argv.registry !== undefined) return verifyRegistry(argv, reporter);
  let size = 0;
  for (const b of argv.bundle) {
    try {
      size += statSync(b).size;
    } catch {
      throw new UsageError(`bundle ${printable(b)} does not exist`);
    }
  }
  // Metadata that is not usable is one line (exit 3) before any progress; --json still gets its report.
  if (!argv.json) for (const b of argv.bundle) if (!parsed.has(b)) parsed.set(b, await readParsedMetadata(b));
  const name = argv.bundle.length === 1 ? printable(argv.bundle[0]!) : `${argv.bundle.length} volumes`;
  reporter.startBytes('read', `verifying ${name}`, size);
  const started = Date.now();
  let last = 0;
  const report = await verifyBundles(argv.bundle, {
    parsed,
    ...(signatures ? { signatures } : {}),
    onProgress: (pos) => {
      // Positions restart with each file.
      reporter.advance('read', Math.max(0, pos - last));
      last = pos < last ? 0 : pos;
    },
  });
  reporter.stop();
  const seconds = (Date.now() - started) / 1000;
  reporter.result({ ...report, seconds });
  // --quiet keeps a clean result silent, and a damaged one down to its problems.
  // A file that is no bundle at all (no usable metadata) gets the one line below, not a report.
  const readable = report.tool !== undefined;
  if (!argv.json && readable && (!argv.quiet || !report.ok)) printReport(report, seconds, argv.quiet);
  if (!report.ok) throw new CheckFailed(`${name} ${verdict(report)}`);
  if (report.signatures) {
    if (!argv.json) printSignatures(report.signatures, signatures!, argv.quiet);
    const refused = unsignedImages(report.signatures);
    if (refused) throw new CheckFailed(`${name}: ${refused}`, ExitCode.unsigned);
  }
}

/** The last line of a failed verify: what is wrong, naming the first problem, and what is still usable. */
function verdict(report: VerifyReport): string {
  const problems = [
    ...(report.sidecar.status === 'mismatch' ? ['its checksum differs from the sidecar'] : []),
    ...report.problems,
    ...report.images.flatMap((im) => im.problems.map((p) => `${im.reference}: ${p}`)),
  ];
  const first = `${printable(problems[0] ?? 'no metadata', PROBLEM_MAX)}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`;
  const total = report.images.length;
  if (total === 0) return `is not usable: ${first}`;
  const broken = report.images.filter((i) => i.status === 'damaged' || i.status === 'incomplete').length;
  if (broken === 0) return `is damaged: ${first}; all ${total} images are intact`;
  const rest = broken < total ? `; the other ${total - broken} are intact and can still be imported` : '';
  return `is damaged: ${broken} of ${total} images broken, ${first}${rest}`;
}

/** Longest problem line shown: problems quote bundle strings, each already bounded where it is known. */
const PROBLEM_MAX = 1000;

/**
 * The human report, on stderr. Every string from the bundle (references,
 * platforms, tool, sidecar text, problems) is passed through printable: one
 * inert line each, bounded.
 */
function printReport(r: VerifyReport, seconds: number, problemsOnly: boolean): void {
  const out = (s: string) => printErr(`${s}\n`);
  const details = [
    ...r.problems,
    ...r.images.flatMap((im) => im.problems.map((p) => `${printable(im.reference)}: ${p}`)),
  ].map((p) => printable(p, PROBLEM_MAX));
  if (problemsOnly) {
    for (const p of details) out(`problem: ${p}`);
    return;
  }
  out(
    `bundle ${printable(r.bundle)}: ${formatBytes(r.bytes)}${r.tool ? `, written by ${printable(r.tool.name)} ${printable(r.tool.version)} (format ${printable(String(r.formatVersion))})` : ''}`,
  );
  const side: Record<VerifyReport['sidecar']['status'], string> = {
    ok: 'matches',
    mismatch: `MISMATCH (sidecar ${printable(String(r.sidecar.expected))}, file ${printable(String(r.sidecar.actual))})`,
    absent: 'absent (not checked)',
    invalid: `unusable (${printable(r.sidecar.reason ?? 'not in sha256sum format')})`,
    unchecked: 'not checked (the bundle could not be read to the end)',
  };
  out(`checksum sidecar: ${side[r.sidecar.status]}`);
  out(`signature: ${r.signed ? 'present' : 'none'}`);
  if (r.volumes) {
    const v = r.volumes;
    out(
      `volume set of ${v.count}: present ${v.present.join(', ') || 'none'}${v.missing.length ? `; not given ${v.missing.join(', ')}` : ''}${v.damaged.length ? `; DAMAGED ${printableList(v.damaged.map(String))}` : ''}`,
    );
  }
  if (r.delta)
    out(
      `delta bundle, made against ${printableList(r.delta.against)}: ${r.delta.dependsOn} blobs are left out and must already be in the target registry`,
    );
  if (r.images.length > 0) {
    const rows = [['IMAGE', 'STATUS', 'PLATFORMS']];
    for (const im of r.images) {
      const plats = im.platforms
        .map((p) => (p.status === 'intact' ? p.platform : `${p.platform} (${p.status})`))
        .join(', ');
      rows.push([im.reference, im.status, plats || '-']);
    }
    out(table(rows));
  }
  if (details.length > 0) {
    out('problems:');
    for (const p of details) out(`  - ${p}`);
  }
  out(
    `${r.blobs.verified} of ${r.blobs.listed} blobs verified, ${r.blobs.damaged} damaged, ${r.blobs.missing} missing, in ${seconds.toFixed(1)}s (${formatBytes(r.bytes / Math.max(seconds, 0.001))}/s)`,
  );
  if (r.ok)
    out(
      r.images.some((i) => i.status === 'needs other volumes')
        ? 'volumes intact; some images need the volumes not given here'
        : 'bundle intact',
    );
}
