import type { CountersignKey } from '../signatures/countersign.js';
import {
  preferCarriedRoot,
  printSignatures,
  countersignKeyFrom,
  signatureOptions,
  signatureOptionsFrom,
  type SignatureArgs,
} from './signature-options.js';
import type { SignatureOptions } from '../signatures/check-images.js';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { statSync } from 'node:fs';
import {
  countersignVerified,
  importBundle,
  MissingDependenciesError,
  RepositoriesMissingError,
  type ImportResult,
} from '../import/importer.js';
import { planImport, type ImportPlan, type PlannedImage } from '../import/plan.js';
import { readHead, type ParsedMetadata } from '../bundle/reader.js';
import { carriedBytes, type BundleMetadata } from '../bundle/format.js';
import type { RegistryClient } from '../registry/client.js';
import { requireSignature } from './signing.js';
import { checkRegistry } from '../import/registry-check.js';
import { MirrorConfigError, planMirrors } from '../mirror/plan.js';
import { talosPatch } from '../mirror/talos.js';
import { Reporter } from '../ui/reporter.js';
import { printableList } from '../ui/format.js';
import { formatBytes } from '../util/bytes.js';
import { printOut, writeJson } from '../ui/output.js';
import { printable } from '../util/text.js';
import { setResumeHint } from '../util/interrupt.js';
import { CheckFailed, ExitCode, UsageError } from './errors.js';
import { outputOptions, type OutputArgs } from './output-options.js';
import { buildClient, parseChunkSize, registryOptions, type RegistryArgs } from './registry-options.js';
import {
  printRegistryCheck,
  explicitCredential,
  mappingFrom,
  targetOptions,
  validateRegistry,
  type TargetArgs,
} from './target-options.js';
import { retainFreedMemoryToMove } from '../util/retain-freed-memory.js';

/** Longest reason shown: reasons quote registry answers and bundle strings. */
const MESSAGE_MAX = 1000;

interface ImportArgs extends RegistryArgs, OutputArgs, TargetArgs, SignatureArgs {
  bundle: string;
  'dry-run': boolean;
  'skip-verify': boolean;
  'public-key'?: string;
  'chunk-size'?: string;
  'countersign-key'?: string;
}

export const command = 'import <bundle>';
export const describe = 'Push a bundle into a registry, then prove the registry serves every image';

export function builder(y: Argv): Argv<ImportArgs> {
  return signatureOptions(targetOptions(outputOptions(registryOptions(y))))
    .positional('bundle', { type: 'string', demandOption: true, describe: 'Bundle tar written by export' })
    .option('countersign-key', {
      type: 'string',
      describe:
        'With --verify-signatures: sign every image the policy verified with this key (keygen --type ecdsa-p256), beside it in the registry, for Talos publicKey rules inside the gap',
    })
    .option('dry-run', {
      type: 'boolean',
      default: false,
      describe: 'Print the plan (repositories, tags, bytes to upload) and write nothing',
    })
    .option('public-key', {
      type: 'string',
      describe: 'Refuse the bundle unless it is signed by this Ed25519 public key (checked before anything is pushed)',
    })
    .option('chunk-size', {
      type: 'string',
      describe:
        'Upload blobs larger than SIZE in chunks of at most SIZE (512K, 8M), for registries or proxies that limit request bodies; chunks of 8M are used by default once a registry refuses a whole blob (413)',
    })
    .option('skip-verify', {
      type: 'boolean',
      default: false,
      describe: 'Do not check the registry against the bundle at the end',
    })
    .example('$0 import talos.tar --registry 10.5.0.1:6000 --plain-http', 'Seed a plain-HTTP registry')
    .example(
      '$0 import talos.tar --registry registry.lan --ca-file ca.pem --username ci --password-stdin < pw',
      'TLS with a private CA and credentials',
    )
    .example(
      '$0 import talos.tar --registry 10.5.0.1:6000 --public-key site.pub --verify-signatures policy.yaml',
      'Only images whose signatures satisfy the policy go in (checked offline)',
    )
    .example(
      '$0 import talos.tar --registry harbor.lan --repo-prefix airgap --dry-run',
      'What would go where, into a Harbor project',
    )
    .epilog(
      'Blobs are streamed from the bundle and hashed on the way; manifests are pushed after their blobs, tags last, so an interrupted import never exposes an image that cannot be pulled. ' +
        'Rerunning the same command finishes the job and uploads nothing twice. Registries without a catalog (GitLab, GHCR, ECR, Harbor for non-admins) are checked reference by reference. A registry where repositories or projects must exist before a push (Harbor, GitLab) is asked first: the import then stops before pushing anything, naming every one to create (exit 1). Exit codes: 0 done and verified, 1 a registry or network failure (some images not imported, or repositories to create first), 3 the bundle is damaged or the registry does not match, 4 signature missing or invalid (--public-key), 5 an image fails the signature policy (--verify-signatures; nothing of it is pushed), 2 usage, 1 other failure, 130 interrupted.',
    ) as unknown as Argv<ImportArgs>;
}

export async function handler(argv: ArgumentsCamelCase<ImportArgs>): Promise<void> {
  const reporter = new Reporter({ quiet: argv.quiet, json: argv.json, tty: process.stderr.isTTY === true });
  const registry = validateRegistry(argv.registry);
  const chunkSize = parseChunkSize(argv['chunk-size']);
  const policy = await signatureOptionsFrom(argv);
  const countersignKey = await countersignKeyFrom(argv, policy);
  const { metadata, parsed, plan, signedBy } = await readBundle(argv, reporter);
  const signatures = await preferCarriedRoot(policy, argv, metadata.trustedRoot, signedBy, (l) =>
    reporter.info(`note: ${l}`),
  );
  if (argv['dry-run']) {
    printPlan(plan, registry, argv.json);
    return;
  }
  retainFreedMemoryToMove(carriedBytes(metadata.blobs));
  const explicit = await explicitCredential(argv, registry);
  const { client, close } = buildClient(argv, {
    ...(explicit ? { explicit } : {}),
    ...(chunkSize !== undefined ? { chunkSize } : {}),
    onRetry: (e) =>
      reporter.warn(`${printable(e.reason, MESSAGE_MAX)}; retry ${e.attempt} in ${(e.delayMs / 1000).toFixed(1)}s`),
  });
  setResumeHint(
    'rerun the same command: what is already in the registry is not uploaded again, and no tag was set for an unfinished image',
  );
  const started = Date.now();
  if (metadata.delta)
    reporter.info(
      `delta bundle (made against ${printableList(metadata.delta.against)}): ${plan.external.size} blobs are expected in ${registry} already`,
    );
  const session: ImportSession = { argv, registry, plan, parsed, client, reporter, signatures, countersignKey };
  try {
    const result = await pushBundle(session);
    reporter.stop();
    await reportImport(session, result, (Date.now() - started) / 1000);
  } finally {
    reporter.stop();
    close();
  }
}

/** One import run: what the steps after the options share. */
interface ImportSession {
  argv: ArgumentsCamelCase<ImportArgs>;
  registry: string;
  plan: ImportPlan;
  /** The metadata as read (and its signature checked) before the plan was made. */
  parsed: ParsedMetadata;
  client: RegistryClient;
  reporter: Reporter;
  /** The signature policy images must satisfy to be pushed (--verify-signatures). */
  signatures: SignatureOptions | undefined;
  countersignKey: CountersignKey | undefined;
}

/** The bundle's metadata (its signature checked first, with --public-key) and where each image goes. */
async function readBundle(
  argv: ArgumentsCamelCase<ImportArgs>,
  reporter: Reporter,
): Promise<{ metadata: BundleMetadata; parsed: ParsedMetadata; plan: ImportPlan; signedBy: string | undefined }> {
  try {
    statSync(argv.bundle);
  } catch {
    throw new UsageError(`bundle ${printable(argv.bundle)} does not exist`);
  }
  const head = await readHead(argv.bundle);
  const metadata = head.metadata;
  let signedBy: string | undefined;
  if (argv['public-key']) {
    signedBy = await requireSignature(argv.bundle, argv['public-key'], head.bytes, head.signature);
    reporter.info(`signature valid (key ${printable(signedBy)})`);
  }
  const plan: ImportPlan = planImport(metadata, mappingFrom(argv));
  return { metadata, parsed: head, plan, signedBy };
}

/** The push, reported as it goes; a delta whose base the registry lacks is the bundle's problem (exit 3). */
function pushBundle({
  argv,
  registry,
  plan,
  parsed,
  client,
  reporter,
  signatures,
}: ImportSession): Promise<ImportResult> {
  return importBundle(argv.bundle, client, registry, plan, {
    concurrency: argv.concurrency,
    parsed,
    ...(signatures ? { signatures } : {}),

    events: {
      planned: (w) => {
        reporter.info(
          `${w.images} images: ${w.complete} already in ${registry}; ${w.uploads} blobs (${formatBytes(w.uploadBytes)}) to upload, ${w.mounts} to mount`,
        );
        if (w.uploadBytes > 0) reporter.startBytes('upload', 'uploading blobs', w.uploadBytes);
      },
      bytes: (n) => reporter.advance('upload', n),
      blobFailed: (d, m) => reporter.warn(`blob ${printable(d)}: ${printable(m, MESSAGE_MAX)}`),
      partsStaged: (d, n, waitingFor) =>
        reporter.info(
          `blob ${printable(d)} is cut across volumes: ${n > 0 ? `${n} part(s) of it go in from this volume; ` : ''}it is completed by the run that brings volume${waitingFor.length > 1 ? 's' : ''} ${waitingFor.join(', ')}`,
        ),
      imageDone: (p, status) => reporter.info(`  ${status.padEnd(15)} ${printable(targetName(registry, p))}`),
    },
  }).catch((err: unknown) => {
    if (err instanceof MissingDependenciesError) throw new CheckFailed(err.message, ExitCode.damaged);
    // The registry's setup, not the bundle: exit 1, like any refusal by the registry.
    if (err instanceof RepositoriesMissingError) throw new CheckFailed(err.message, ExitCode.failure);
    throw err;
  });
}

/** The summary, the registry check (unless --skip-verify), the Talos patch when all is in, and the exit code. */
async function reportImport(session: ImportSession, result: ImportResult, seconds: number): Promise<void> {
  const { argv, registry, plan, client, reporter } = session;
  const failed = result.images.filter((i) => i.status === 'failed');
  for (const f of failed)
    reporter.warn(
      `${printable(f.reference)} was not imported: ${printable(f.reason ?? 'no reason given', MESSAGE_MAX)}`,
    );
  reporter.info(
    `uploaded ${result.uploaded.blobs} blobs (${formatBytes(result.uploaded.bytes)}), mounted ${result.mounted}, skipped ${result.skipped} already present, in ${seconds.toFixed(1)}s${result.readBundle ? '' : ' (registry already complete: bundle payload not read)'}`,
  );
  const waiting = result.images.filter((i) => i.status === 'waiting');
  reportWaiting(waiting, reporter);
  for (const r of result.images.filter((i) => i.status === 'not accepted'))
    reporter.warn(`${printable(r.reference)}: ${printable(r.reason ?? 'not accepted', MESSAGE_MAX)}`);
  if (result.signatures && session.signatures && !argv.json)
    printSignatures(result.signatures, session.signatures, argv.quiet);

  // Images that wait for other volumes, artifacts the registry does not accept, and images the
  // signature policy refused are not expected in it.
  const absent = new Set(['waiting', 'not accepted', 'unsigned']);
  const done = new Set(result.images.filter((i) => !absent.has(i.status)).map((i) => i.reference));
  const checkPlan = { ...plan, images: plan.images.filter((p) => done.has(p.image.reference)) };
  if (checkPlan.images.length === 0 && waiting.length > 0)
    reporter.info('no image is complete yet, so the registry has nothing of this bundle to check');
  const skipCheck = argv['skip-verify'] || checkPlan.images.length === 0;
  const check = skipCheck
    ? undefined
    : await checkRegistry(client, registry, checkPlan, { deep: false, concurrency: argv.concurrency });
  if (check && !argv.json) printRegistryCheck(check, reporter);
  reporter.result({ registry, seconds, ...result, verification: check });
  if (!argv.json && failed.length === 0 && waiting.length === 0 && !argv.quiet) {
    printTalosPatch(argv, registry, plan, reporter);
  }
  if (failed.length > 0) {
    // Exit 3 only when the bundle is at fault; a registry or network failure is 1, like everywhere else.
    const code = failed.some((f) => f.cause === 'registry') ? ExitCode.failure : ExitCode.damaged;
    throw new CheckFailed(
      `${failed.length} of ${result.images.length} images were not imported (no tag was set for them): ${printable(failed[0]!.reason ?? 'no reason given', MESSAGE_MAX)}${failed.length > 1 ? ' (and more above)' : ''}`,
      code,
    );
  }
  if (check && !check.ok)
    throw new CheckFailed(`the registry does not match the bundle after import; see the table above`, ExitCode.damaged);
  if (session.countersignKey) {
    const key = session.countersignKey;
    const signed = await countersignVerified(client, registry, plan, result, key, argv.concurrency);
    reporter.info(
      `countersigned ${signed} verified images with key ${key.fingerprint} (a Sigstore bundle referrer each, and the sha256-<hex>.sig tag where none was carried)`,
    );
  }
  const unsigned = result.images.filter((i) => i.status === 'unsigned');
  if (unsigned.length > 0)
    throw new CheckFailed(
      `${unsigned.length} of ${result.images.length} images fail the signature policy, so nothing of them was pushed: ${printable(unsigned[0]!.reference)} (${printable(unsigned[0]!.reason ?? 'unsigned', MESSAGE_MAX)})${unsigned.length > 1 ? ' (and more)' : ''}`,
      ExitCode.unsigned,
    );
}

/** Listed by name at most; the rest are counted. */
const MAX_WAITING_LISTED = 20;

/**
 * Images of a volume set that this run could not complete: each with the
 * volumes it waits for. Such a run exits 0 when nothing failed; importing
 * the other volumes, in any order, completes them.
 */
function reportWaiting(waiting: ImportResult['images'], reporter: Reporter): void {
  if (waiting.length === 0) return;
  for (const w of waiting.slice(0, MAX_WAITING_LISTED))
    reporter.info(`  ${printable(w.reference)} ${printable(w.reason ?? 'waits for other volumes')}`);
  if (waiting.length > MAX_WAITING_LISTED) reporter.info(`  … and ${waiting.length - MAX_WAITING_LISTED} more`);
  const volumes = [...new Set(waiting.flatMap((w) => (w.reason ?? '').replace(/\D+/g, ' ').trim().split(' ')))]
    .filter(Boolean)
    .join(', ');
  reporter.info(
    `${waiting.length} images wait for volume(s) ${volumes}: import those volumes (in any order) to complete them`,
  );
}

/** `REGISTRY/REPOSITORY:TAG` (or `@DIGEST`) an image lands at. */
function targetName(registry: string, p: PlannedImage): string {
  return `${registry}/${p.repository}${p.tag !== undefined ? `:${p.tag}` : `@${p.image.digest}`}`;
}

/**
 * The Talos mirror patch for the registry just filled. Its mirror names are the
 * bundle's source registries: one that is not a host[:port] gets no patch (the
 * images are in; only the courtesy output is left out, and a warning says why).
 */
function printTalosPatch(
  argv: ArgumentsCamelCase<ImportArgs>,
  registry: string,
  plan: ImportPlan,
  reporter: Reporter,
): void {
  let patch: string;
  try {
    patch = talosPatch(
      planMirrors({
        endpoint: `${argv['plain-http'] ? 'http' : 'https'}://${registry}`,
        registries: plan.images.map((p) => p.image.registry),
        ...plan.mapping,
        skipFallback: true,
        insecureSkipVerify: false,
      }),
    );
  } catch (err) {
    if (!(err instanceof MirrorConfigError)) throw err;
    reporter.warn(`no Talos mirror patch: ${err.message}`);
    return;
  }
  // Serialised YAML: every string in it is quoted and escaped by js-yaml.
  process.stderr.write(
    `\nTalos machine-config patch for this registry (use the address the nodes reach it at; mirror-config writes other formats):\n${patch}`,
  );
}

function printPlan(plan: ImportPlan, registry: string, json: boolean): void {
  const bytes = [...plan.blobRepos.keys()].reduce((s, d) => s + (plan.sizes.get(d) ?? 0), 0);
  const rows = plan.images.map((p) => ({
    reference: p.image.reference,
    target: targetName(registry, p),
    digest: p.image.digest,
  }));
  if (json) {
    writeJson({ registry, images: rows, blobs: plan.blobRepos.size, bytes });
    return;
  }
  for (const r of rows) printOut(`${printable(r.reference)} -> ${printable(r.target)}\n`);
  printOut(
    `${rows.length} images, ${plan.blobRepos.size} blobs, at most ${formatBytes(bytes)} to upload (less where the registry has them); nothing was written\n`,
  );
}
