import type { ArgumentsCamelCase, Argv } from 'yargs';
import { parsePlatform } from '../oci/platform.js';
import { buildTalosCache, type CacheLayout, type TalosCacheResult } from '../talos-cache/build.js';
import type { PlatformChoice } from '../talos-cache/plan.js';
import { Reporter } from '../ui/reporter.js';
import { formatBytes } from '../util/bytes.js';
import { printable } from '../util/text.js';
import { retainFreedMemory } from '../util/retain-freed-memory.js';
import { CheckFailed, ExitCode, UsageError } from './errors.js';
import { SignaturePolicyRefusal } from '../signatures/errors.js';
import { countersignKeyFrom, signatureOptions, signatureOptionsFrom, type SignatureArgs } from './signature-options.js';
import { outputOptions, type OutputArgs } from './output-options.js';

interface TalosCacheArgs extends OutputArgs, SignatureArgs {
  bundle: string[];
  output: string;
  layout: CacheLayout;
  platform: string[];
  'countersign-key'?: string;
}

export const command = 'talos-cache <bundle..>';
export const describe = 'Build a Talos image cache (for the imager or cache-serve) from a bundle, offline';

export function builder(y: Argv): Argv<TalosCacheArgs> {
  return signatureOptions(outputOptions(y))
    .option('countersign-key', {
      type: 'string',
      describe:
        'With --verify-signatures: sign every image the policy verified with this key, in the cache, for Talos publicKey rules with the cache alone (ECDSA signatures differ run to run; an Ed25519 key keeps the cache reproducible)',
    })
    .positional('bundle', {
      type: 'string',
      array: true,
      demandOption: true,
      describe: 'Bundle tar; or the volumes of one set; or a delta followed by the bundle it was made against',
    })
    .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'The cache folder (new or empty)' })
    .option('layout', {
      choices: ['oci', 'flat'] as const,
      default: 'oci' as const,
      describe: 'oci: one OCI image for `imager --image-cache`; flat: the tree, for `talosctl image cache-serve`',
    })
    .option('platform', {
      type: 'string',
      array: true,
      default: ['linux/amd64'],
      describe: 'os/arch[/variant] to cache (repeatable), or all (every platform and attestation)',
    })
    .example('$0 talos-cache talos-v1.9.tar -o image-cache.oci', 'OCI layout for `imager --image-cache`')
    .example(
      '$0 talos-cache talos-v1.9.tar -o image-cache --layout flat --platform all',
      'The flat tree, every platform, for `talosctl image cache-serve`',
    )
    .example('$0 talos-cache t.vol001.tar t.vol002.tar -o cache.oci --platform linux/arm64', 'From a volume set')
    .example('$0 talos-cache v1.9-delta.tar v1.8.tar -o cache.oci', 'A delta with the bundle it was made against')
    .epilog(
      'Reads the bundle in place (no network, no extraction), hashes every byte it copies, and writes under a temporary name renamed when complete; SOURCE_DATE_EPOCH sets the time stamps (the same bundle and options give the same bytes). ' +
        'Exit codes: 0 done, 1 failure (disk), 2 usage error (a platform the bundle lacks, -o not empty, a missing volume or base), 3 bundle damaged or altered (nothing written), 5 an image fails the signature policy (--verify-signatures; nothing written).',
    ) as unknown as Argv<TalosCacheArgs>;
}

/** `--platform` values: `all` alone, or platforms (each checked, duplicates dropped). */
export function parsePlatformChoice(values: string[]): PlatformChoice {
  const list = values.flatMap((v) => v.split(',')).map((v) => v.trim());
  if (list.includes('all')) {
    if (list.length > 1) throw new UsageError('--platform all takes every platform: give it alone');
    return 'all';
  }
  const seen = new Set<string>();
  return list.map(parsePlatform).filter((p) => {
    const key = `${p.os}/${p.architecture}/${p.variant ?? ''}`;
    return !seen.has(key) && seen.add(key) !== undefined;
  });
}

function parseSourceDateEpoch(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`SOURCE_DATE_EPOCH must be whole seconds since 1970, got "${value}"`);
  return Number(value);
}

export async function handler(argv: ArgumentsCamelCase<TalosCacheArgs>): Promise<void> {
  retainFreedMemory();
  const reporter = new Reporter({ quiet: argv.quiet, json: argv.json, tty: process.stderr.isTTY === true });
  const platforms = parsePlatformChoice(argv.platform);
  const sourceDateEpoch = parseSourceDateEpoch(process.env.SOURCE_DATE_EPOCH);
  const signatures = await signatureOptionsFrom(argv);
  const countersignKey = await countersignKeyFrom(argv, signatures);
  const started = Date.now();
  try {
    const result = await buildTalosCache(
      {
        bundles: argv.bundle,
        output: argv.output,
        layout: argv.layout,
        platforms,
        ...(sourceDateEpoch !== undefined ? { sourceDateEpoch } : {}),
        ...(signatures ? { signatures } : {}),
        ...(countersignKey ? { countersignKey } : {}),
      },
      {
        onStart: (total) => reporter.startBytes('write', `image cache ${printable(argv.output)}`, total),
        onBytes: (n) => reporter.advance('write', n),
      },
    ).catch((err: unknown) => {
      if (err instanceof SignaturePolicyRefusal) throw new CheckFailed(err.message, ExitCode.unsigned);
      throw err;
    });
    reporter.stop();
    report(reporter, result, (Date.now() - started) / 1000);
  } finally {
    reporter.stop();
  }
}

/** Images listed one per line; past this, a count (a cache of thousands of images is not read line by line). */
const LISTED_IMAGES = 50;

function report(reporter: Reporter, r: TalosCacheResult, seconds: number): void {
  for (const im of r.images.slice(0, LISTED_IMAGES)) {
    const plats = im.platforms.length ? im.platforms.join(', ') : 'single manifest';
    const sigs = im.signatures.length ? `, signatures ${im.signatures.join(', ')}` : '';
    reporter.info(`  ${printable(im.reference)}: ${printable(plats, 300)}${printable(sigs, 300)}`);
  }
  if (r.images.length > LISTED_IMAGES)
    reporter.info(`  … and ${r.images.length - LISTED_IMAGES} more (--json lists them all)`);
  const wrapped = r.image ? `, one ${r.image.platform} image, layer ${r.image.layer.digest}` : '';
  reporter.info(
    `wrote ${printable(r.output)} (${r.layout}${wrapped}): ${r.images.length} images, ${r.files} files, ${r.blobs} blobs, ${formatBytes(r.bytes)} in ${seconds.toFixed(1)}s`,
  );
  reporter.result({ ...r, seconds });
}
