import { verificationFor } from '../mirror/image-verification.js';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { readMetadata } from '../bundle/reader.js';
import type { MirrorPlan } from '../mirror/plan.js';
import { formatTalosVersion } from '../mirror/talos-version.js';
import { buildPatch } from '../talos-patch/documents.js';
import { renderPatch } from '../talos-patch/render.js';
import {
  checkNameserver,
  checkSearchDomain,
  checkTimeServer,
  checkVolumeSize,
  discoveryFrom,
  type AirgapSettings,
} from '../talos-patch/settings.js';
import { installerReference, talosctlForm } from '../talos-patch/talosctl.js';
import { NEWEST_TALOS, styleFor, versionOrNewest } from '../talos-patch/versions.js';
import { printErr, printOut } from '../ui/output.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { printable } from '../util/text.js';
import { UsageError } from './errors.js';
import { mirrorOptions, mirrorPlanFrom, type MirrorArgs } from './mirror-options.js';

const FORMATS = ['patch', 'talosctl'] as const;
type Format = (typeof FORMATS)[number];

interface TalosPatchArgs extends MirrorArgs {
  format: Format;
  'talos-version'?: string;
  'time-server': string[];
  nameserver: string[];
  'search-domain': string[];
  discovery?: string;
  'discovery-endpoint'?: string;
  'image-cache': boolean;
  'image-cache-size'?: string;
  output?: string;
}

export const command = 'talos-patch';
export const describe =
  'Write the whole Talos air-gap patch: registry mirrors, time servers, nameservers, discovery and the image cache, for the Talos version asked';

const repeatable = (describe: string) => ({
  type: 'string' as const,
  default: [] as string[],
  coerce: (v: string | string[]) => ([] as string[]).concat(v),
  describe,
});

export function builder(y: Argv): Argv<TalosPatchArgs> {
  return withHelp(airgapOptions(mirrorOptions(y))) as unknown as Argv<TalosPatchArgs>;
}

/** What else a node in a gap needs, each written only when asked. */
function airgapOptions(y: Argv): Argv {
  return y
    .option('talos-version', {
      type: 'string',
      describe: `The Talos the nodes run (v1.8, 1.12.3); default: the newest style (${formatTalosVersion(NEWEST_TALOS)})`,
    })
    .option('time-server', repeatable('NTP server inside the gap, IP or host name (repeatable)'))
    .option('nameserver', repeatable('DNS resolver inside the gap, an IP address (repeatable)'))
    .option('search-domain', repeatable('DNS search domain (repeatable; Talos 1.9+)'))
    .option('discovery', { type: 'string', choices: ['off'], describe: 'off: no discovery service registry' })
    .option('discovery-endpoint', {
      type: 'string',
      describe: 'A discovery service run inside the gap: https://discovery.lan:3000',
    })
    .option('image-cache', {
      type: 'boolean',
      default: false,
      describe: 'Use the image cache on the boot media (talos-cache; Talos 1.9+)',
    })
    .option('image-cache-size', {
      type: 'string',
      describe: 'With --image-cache on an ISO: size of the IMAGECACHE volume the cache is copied into (2GB)',
    })
    .option('format', {
      choices: FORMATS,
      default: 'patch' as Format,
      describe: 'patch: one config patch file; talosctl: the gen config / cluster create flags that say the same',
    })
    .option('output', { alias: 'o', type: 'string', describe: 'Write the patch to FILE (default stdout)' });
}

function withHelp(y: Argv): Argv {
  return y
    .example(
      '$0 talos-patch --bundle talos.tar --endpoint http://10.5.0.1:6000 --talos-version v1.12 --time-server 10.5.0.1 --nameserver 10.5.0.53 --discovery off --image-cache -o airgap.yaml',
      'Everything a node in the gap needs, for Talos 1.12',
    )
    .example('talosctl gen config demo https://10.5.0.10:6443 --config-patch @airgap.yaml', 'Use it')
    .epilog(
      'A setting the asked Talos version has no field for is refused, naming the version that brought it. ' +
        'Exit codes: 0 written, 2 usage (a bad server, endpoint or combination), 3 the bundle is damaged or forged, 1 other failure.',
    );
}

/** The settings besides the mirrors, checked before anything is read. */
function settingsFrom(argv: TalosPatchArgs): AirgapSettings {
  if (argv['image-cache-size'] !== undefined && !argv['image-cache'])
    throw new UsageError('--image-cache-size needs --image-cache');
  return {
    timeServers: argv['time-server'].map(checkTimeServer),
    nameservers: argv.nameserver.map(checkNameserver),
    searchDomains: argv['search-domain'].map(checkSearchDomain),
    discovery: discoveryFrom(argv.discovery, argv['discovery-endpoint']),
    imageCache: argv['image-cache']
      ? argv['image-cache-size'] !== undefined
        ? { volumeSize: checkVolumeSize(argv['image-cache-size']) }
        : {}
      : undefined,
  };
}

export async function handler(argv: ArgumentsCamelCase<TalosPatchArgs>): Promise<void> {
  const settings = settingsFrom(argv);
  const { version, note } = versionOrNewest(argv['talos-version']);
  const plan = await mirrorPlanFrom(argv);
  if (argv.format === 'talosctl') {
    // The flags are the same for every Talos version: no version note.
    await printTalosctl(plan, settings, argv.bundle);
    return;
  }
  const patch = buildPatch(plan, settings, styleFor(version));
  if (argv['image-verification'] !== undefined)
    patch.documents.push(
      verificationFor(argv['image-verification'], plan.options.registries, version, (n) => patch.notes.push(n)),
    );
  for (const n of [...(note ? [note] : []), ...patch.notes]) printErr(`note: ${n}\n`);
  const text = renderPatch(patch);
  if (argv.output) {
    // Credentials may be inside: readable by the owner only.
    await writeFileAtomic(argv.output, text, plan.options.auth ? 0o600 : 0o644);
    printErr(`wrote ${printable(argv.output)}\n`);
  } else process.stdout.write(text); // serialised YAML: every string quoted and escaped by js-yaml
}

async function printTalosctl(plan: MirrorPlan, settings: AirgapSettings, bundle: string | undefined): Promise<void> {
  const references = bundle ? (await readMetadata(bundle)).images.map((im) => im.reference) : [];
  const form = talosctlForm(plan, settings, installerReference(references));
  printOut(form.flags);
  if (form.needPatch.length > 0)
    printErr(
      `note: talosctl has no flags for ${form.needPatch.join(', ')}: write them with --format patch and pass the file with --config-patch\n`,
    );
}
