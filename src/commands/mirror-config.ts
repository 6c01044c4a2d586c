import { verificationFor } from '../mirror/image-verification.js';
import { UsageError } from './errors.js';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ArgumentsCamelCase, Argv } from 'yargs';
import { BundleFormatError } from '../bundle/reader.js';
import { containerdHosts, type HostsFile } from '../mirror/containerd.js';
import { k3sRegistries } from '../mirror/k3s.js';
import { containedPath, makeContainedFolder, OutputPathError } from '../mirror/output-files.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { MirrorConfigError, type MirrorPlan } from '../mirror/plan.js';
import { dump, talosMultiDoc, talosPatch } from '../mirror/talos.js';
import { defaultTalosFormat, parseTalosVersion, talosctlFlags, talosFieldsFor } from '../mirror/talos-version.js';
import { printErr, printOut } from '../ui/output.js';
import { printable } from '../util/text.js';
import { mirrorOptions, mirrorPlanFrom, type MirrorArgs } from './mirror-options.js';

const FORMATS = ['talos', 'talos-multidoc', 'talosctl', 'containerd', 'k3s'] as const;
type Format = (typeof FORMATS)[number];

interface MirrorConfigArgs extends MirrorArgs {
  /** Absent: the Talos style `--talos-version` recommends (see `formatFor`). */
  format?: Format;
  output?: string;
  'talos-version'?: string;
}

export const command = 'mirror-config';
export const describe =
  'Write the cluster-side registry mirror configuration (Talos, containerd, k3s) for an imported bundle';

export function builder(y: Argv): Argv<MirrorConfigArgs> {
  return withHelp(options(y)) as unknown as Argv<MirrorConfigArgs>;
}

/** The options, with what each means. */
function options(y: Argv): Argv {
  return mirrorOptions(y)
    .option('format', {
      choices: FORMATS,
      describe:
        'talos: machine-config patch (machine.registries); talos-multidoc: Talos 1.12+ documents; talosctl: --registry-mirror flags; containerd: certs.d/HOST/hosts.toml; k3s: registries.yaml (also RKE2). Default: talos-multidoc for --talos-version 1.12 or later, else talos',
    })
    .option('talos-version', {
      type: 'string',
      describe:
        'The Talos the nodes run, as talosctl gen config takes it (v1.8, 1.12): only fields that version reads are written',
    })
    .option('output', {
      alias: 'o',
      type: 'string',
      describe: 'Write to FILE (containerd: a folder receiving HOST/hosts.toml); default stdout',
    });
}

/** Examples and the closing text of --help: how the options combine, and the exit codes. */
function withHelp(y: Argv): Argv {
  return y
    .example(
      '$0 mirror-config --endpoint http://10.5.0.1:6000 --bundle talos.tar',
      'Talos patch for a registry filled with the default mapping',
    )
    .example(
      '$0 mirror-config --format talos-multidoc --endpoint https://registry.lan --ca-file ca.pem --bundle talos.tar',
      'Talos 1.12+ documents with a private CA',
    )
    .example(
      '$0 mirror-config --talos-version v1.12 --endpoint http://10.5.0.1:6000 --bundle talos.tar',
      'Talos 1.12+: the RegistryMirrorConfig documents its documentation recommends',
    )
    .example(
      '$0 mirror-config --talos-version v1.8 --endpoint http://10.5.0.1:6000 --bundle talos.tar',
      'A patch Talos 1.8 accepts (no skipFallback)',
    )
    .example(
      '$0 mirror-config --format talos-multidoc --endpoint http://10.5.0.1:6000 --bundle talos.tar --image-verification cluster.pub',
      'With the ImageVerificationConfig that makes nodes check the cluster signature of every image',
    )
    .example(
      'talosctl cluster create $($0 mirror-config --format talosctl --endpoint http://10.5.0.1:6000 --bundle talos.tar)',
      'Flags for talosctl',
    )
    .example(
      '$0 mirror-config --format containerd --endpoint http://10.5.0.1:6000 --keep-registry-host --bundle b.tar -o certs.d',
      'containerd hosts.toml per registry',
    )
    .example(
      '$0 mirror-config --format k3s --endpoint http://10.5.0.1:6000 --bundle b.tar -o registries.yaml',
      'k3s / RKE2 registries.yaml',
    )
    .epilog(
      'Refuses an endpoint without scheme, TLS options on an http:// endpoint, and one "*" mirror when the bundle holds the same repository path under two registries; warns about loopback endpoints. ' +
        'Files are written whole (temporary name, then renamed), only under -o. Exit codes: 0 written, 2 usage, 3 the bundle names a source registry that is not a host[:port] (damaged or forged; nothing written), 1 other failure.',
    );
}

export async function handler(argv: ArgumentsCamelCase<MirrorConfigArgs>): Promise<void> {
  const plan = await mirrorPlanFrom(argv);
  const format = formatFor(argv);

  if (format === 'containerd') {
    const hosts = containedHosts(plan);
    if (argv.output) {
      const written = await writeHostsFolders(hosts, argv.output);
      printErr(
        `wrote ${written.map((p) => printable(p)).join(', ')}; copy the folders into containerd's config_path (e.g. /etc/containerd/certs.d)\n`,
      );
      return;
    }
    printOut(
      hosts
        .map((h) =>
          Object.entries(h.files)
            .map(([n, c]) => `# ---- ${h.namespace}/${n}\n${c}`)
            .join(''),
        )
        .join('\n'),
    );
    return;
  }
  const text = renderText(format, plan, argv['talos-version']) + verificationDocument(argv, format, plan);
  if (argv.output) {
    // Credentials may be inside: readable by the owner only.
    await writeFileAtomic(argv.output, text, plan.options.auth ? 0o600 : 0o644);
    printErr(`wrote ${printable(argv.output)}\n`);
  } else process.stdout.write(text); // serialised YAML: every string in it is quoted and escaped by js-yaml
}

/** `--format`, else the Talos style the asked version recommends (the multi-document one from 1.12). */
function formatFor(argv: MirrorConfigArgs): Format {
  if (argv.format !== undefined) return argv.format;
  const version = argv['talos-version'] !== undefined ? parseTalosVersion(argv['talos-version']) : undefined;
  return defaultTalosFormat(version);
}

/** The single-file formats, with the Talos fields the asked version reads. */
function renderText(format: Exclude<Format, 'containerd'>, plan: MirrorPlan, talosVersion: string | undefined): string {
  if (format === 'k3s') return k3sRegistries(plan);
  if (format === 'talosctl') {
    if (plan.options.skipFallback)
      printErr('note: talosctl flags set no skipFallback: nodes try the upstream registries when the mirror fails\n');
    return talosctlFlags(plan);
  }
  const version = talosVersion !== undefined ? parseTalosVersion(talosVersion) : undefined;
  const fields = talosFieldsFor(format, version, plan.options.skipFallback);
  for (const w of fields.warnings) printErr(`warning: ${w}\n`);
  const forVersion = { ...plan, options: { ...plan.options, skipFallback: fields.skipFallback } };
  return format === 'talos' ? talosPatch(forVersion) : talosMultiDoc(forVersion);
}

/** `--image-verification`: the ImageVerificationConfig document to append, after a `---`, or nothing. */
function verificationDocument(argv: MirrorConfigArgs, format: Format, plan: MirrorPlan): string {
  const keyFile = argv['image-verification'];
  if (keyFile === undefined) return '';
  if (format !== 'talos' && format !== 'talos-multidoc')
    throw new UsageError('--image-verification writes a Talos document: use it with --format talos or talos-multidoc');
  const version = argv['talos-version'] !== undefined ? parseTalosVersion(argv['talos-version']) : undefined;
  const config = verificationFor(keyFile, plan.options.registries, version, (n) => printErr(`note: ${n}\n`));
  return `---\n${dump(config)}`;
}

/** The hosts.toml files of the plan; a namespace that is not a host is refused (it would name a folder). */
function containedHosts(plan: MirrorPlan): HostsFile[] {
  try {
    return containerdHosts(plan);
  } catch (err) {
    if (err instanceof MirrorConfigError) throw new BundleFormatError(err.message);
    throw err;
  }
}

/**
 * Writes `DIR/NAMESPACE/FILE` for every hosts file, each atomically. Every
 * path is checked to stay under DIR, and every folder is made and checked,
 * before the first file is written: a refusal leaves no file behind.
 */
async function writeHostsFolders(hosts: HostsFile[], root: string): Promise<string[]> {
  let targets;
  try {
    targets = hosts.map((h) => ({
      folder: containedPath(root, h.namespace),
      files: Object.entries(h.files).map(([name, content]) => ({
        path: containedPath(root, h.namespace, name),
        content,
      })),
    }));
  } catch (err) {
    if (err instanceof OutputPathError) throw new BundleFormatError(err.message);
    throw err;
  }
  await mkdir(root, { recursive: true });
  for (const t of targets) await makeContainedFolder(root, t.folder);
  for (const t of targets) for (const f of t.files) await writeFileAtomic(f.path, f.content, 0o644);
  return hosts.map((h) => join(root, h.namespace, 'hosts.toml'));
}
