import type { ArgumentsCamelCase, Argv } from 'yargs';
import { RECEIPT_FORMAT, type Receipt } from '../bundle/receipt.js';
import { planImport } from '../import/plan.js';
import { readMetadata } from '../bundle/reader.js';
import { IMAGE_BOUNDS, type BundleMetadata } from '../bundle/format.js';
import type { RegistryClient } from '../registry/client.js';
import { resolveImage } from '../oci/resolve.js';
import type { Repository } from '../registry/repository.js';
import { mapSettled } from '../util/pool.js';
import { CheckFailed, ExitCode } from './errors.js';
import { buildClient, registryOptions, type RegistryArgs } from './registry-options.js';
import { explicitCredential, mappingFrom, validateRegistry } from './target-options.js';
import { jsonText, printErr } from '../ui/output.js';
import { printable } from '../util/text.js';
import { writeFileAtomic } from '../util/atomic-file.js';

interface InventoryArgs extends RegistryArgs {
  registry: string;
  username?: string;
  'password-stdin': boolean;
  output: string;
  bundle?: string;
  'keep-registry-host': boolean;
  'repo-prefix'?: string;
}

export const command = 'inventory';
export const describe = 'Write a receipt of what the isolated registry holds, for delta exports on the connected side';

export function builder(y: Argv): Argv<InventoryArgs> {
  return registryOptions(y)
    .option('registry', { type: 'string', demandOption: true, describe: 'The isolated registry, host[:port]' })
    .option('username', { type: 'string', describe: 'Registry user (password from --password-stdin)' })
    .option('password-stdin', {
      type: 'boolean',
      default: false,
      describe: 'Read the registry password from standard input',
    })
    .option('output', { alias: 'o', type: 'string', default: 'receipt.json', describe: 'Receipt file to write' })
    .option('bundle', {
      type: 'string',
      describe:
        'Take the repositories from this bundle (as import maps them) when the registry does not list its catalog',
    })
    .option('keep-registry-host', {
      type: 'boolean',
      default: false,
      describe: 'With --bundle: the mapping import used (see import --help)',
    })
    .option('repo-prefix', { type: 'string', describe: 'With --bundle: the --repo-prefix import used' })
    .example(
      '$0 inventory --registry 10.5.0.1:6000 --plain-http -o receipt.json',
      'Carry receipt.json back, then: export … --exclude-receipt receipt.json',
    )
    .example(
      '$0 inventory --registry ghcr.lan --bundle talos.tar -o receipt.json',
      'A registry without a catalog (GitLab, GHCR, ECR, Harbor for non-admins): the repositories of a bundle',
    )
    .epilog(
      'Lists the catalog, every tag, and walks each manifest down to its blobs. A registry that does not list its catalog (/v2/_catalog) needs --bundle: the repositories are then those the bundle imports into.',
    ) as unknown as Argv<InventoryArgs>;
}

/**
 * The repositories to read: the catalog's, plus the bundle's with --bundle. A
 * registry without a catalog needs --bundle; a repository the bundle names and
 * the registry does not hold is left out of the receipt.
 */
async function inventoryRepositories(
  argv: ArgumentsCamelCase<InventoryArgs>,
  client: RegistryClient,
  registry: string,
): Promise<{ listed: Set<string>; fromBundle: string[] }> {
  const fromBundle = argv.bundle ? bundleRepositories(await readMetadata(argv.bundle), argv) : [];
  const listed = await client.listCatalog(registry);
  if (listed) return { listed, fromBundle };
  if (!argv.bundle) {
    throw new CheckFailed(
      `${registry} does not list its catalog (/v2/_catalog disabled, unsupported or restricted); name the repositories with --bundle B.tar (the bundle imported into it)`,
      ExitCode.failure,
    );
  }
  printErr(
    `${registry} does not list its catalog: reading the ${fromBundle.length} repositories from the bundle ${printable(argv.bundle)}\n`,
  );
  return { listed: new Set(), fromBundle };
}

function bundleRepositories(metadata: BundleMetadata, argv: ArgumentsCamelCase<InventoryArgs>): string[] {
  const plan = planImport(metadata, mappingFrom(argv));
  return [...new Set(plan.images.map((p) => p.repository))];
}

export async function handler(argv: ArgumentsCamelCase<InventoryArgs>): Promise<void> {
  const registry = validateRegistry(argv.registry);
  const explicit = await explicitCredential(argv, registry);
  const { client, close } = buildClient(argv, explicit ? { explicit } : {});
  try {
    const { listed: repos, fromBundle } = await inventoryRepositories(argv, client, registry);
    const receipt: Receipt = { format: RECEIPT_FORMAT, registry, repositories: {}, manifests: [], blobs: {} };
    const manifests = new Set<string>();
    const tagged = await mapSettled([...new Set([...repos, ...fromBundle])].sort(), argv.concurrency, async (name) => {
      const repo = client.repository(registry, name);
      return { repo, tags: (await repo.listTags()).tags.sort() };
    });
    const pairs: Array<{ repo: Repository; tag: string }> = [];
    for (const r of tagged) {
      if (!r.ok) throw r.error;
      if (r.value.tags.length === 0 && !repos.has(r.value.repo.name)) continue;
      receipt.repositories[r.value.repo.name] = {};
      for (const tag of r.value.tags) pairs.push({ repo: r.value.repo, tag });
    }
    const walked = await mapSettled(pairs, argv.concurrency, async ({ repo, tag }) => {
      const image = await resolveImage(tag, (sel) => repo.getManifest(sel), undefined, `${repo}:${tag}`, IMAGE_BOUNDS);
      return { repo, tag, image };
    });
    for (const w of walked) {
      if (!w.ok) throw w.error;
      const { repo, tag, image } = w.value;
      receipt.repositories[repo.name]![tag] = image.root.digest;
      for (const m of image.manifests) manifests.add(m.digest);
      for (const b of image.blobs) receipt.blobs[b.digest] ??= repo.name;
    }
    receipt.manifests = [...manifests].sort();
    receipt.blobs = Object.fromEntries(Object.entries(receipt.blobs).sort(([a], [b]) => (a < b ? -1 : 1)));
    // Repository and tag names are the registry's: terminal controls escaped, as in every JSON the tool writes.
    await writeFileAtomic(argv.output, `${jsonText(receipt)}\n`);
    printErr(
      `wrote ${printable(argv.output)}: ${Object.keys(receipt.repositories).length} repositories, ${pairs.length} tags, ${receipt.manifests.length} manifests, ${Object.keys(receipt.blobs).length} blobs\n`,
    );
  } finally {
    close();
  }
}
