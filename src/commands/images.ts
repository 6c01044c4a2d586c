import type { ArgumentsCamelCase, Argv } from 'yargs';
import { formatOrigin } from '../reference/image-list.js';
import { gatherReferences, imageSourceOptions, loadSpec, type GatherArgs } from './image-inputs.js';
import { outputOptions, type OutputArgs } from './output-options.js';
import { registryOptions } from './registry-options.js';
import { printErr, printOut, writeJson } from '../ui/output.js';
import { factoryInputs, factoryOptions, type FactoryArgs } from './factory-options.js';

interface ImagesArgs extends GatherArgs, OutputArgs, FactoryArgs {}

export const command = 'images [images..]';
export const describe =
  'Print the resolved image list (normalised, merged, with where each came from) without downloading';

export function builder(y: Argv): Argv<ImagesArgs> {
  return factoryOptions(imageSourceOptions(outputOptions(registryOptions(y))))
    .example('talosctl images | $0 images -f -', 'Normalise a talosctl list')
    .example(
      '$0 images --from-talos-config controlplane.yaml --from-manifests apps/ > cluster.images',
      'Collect every image a cluster needs, then review the file',
    )
    .example('$0 images --from-manifests apps/ | $0 export -f - -o apps.tar', 'The output is itself a valid image list')
    .example(
      '$0 images --talos-schematic schematic.yaml --talos-version v1.14.0',
      "The schematic's ID (computed offline) and the Image Factory installer it needs",
    )
    .example(
      '$0 images --chart ./charts/my-app --chart-values prod.yaml',
      "The images a chart deploys with these values, and how each was found (annotation, lock file, value, or helm's rendering with --render)",
    )
    .epilog(
      'Each line is a full reference followed by a "# from" comment: the output can be edited and fed back with -f. ' +
        'Chart images that are off with the values given follow as commented lines (uncomment to carry, or pass --chart-all-images). ' +
        'Registries are asked only to settle a chart image whose tag the values leave empty (appVersion or v+appVersion). ' +
        'Exit codes: 0 done, 1 failure (a chart or registry could not be read), 2 usage error.',
    ) as unknown as Argv<ImagesArgs>;
}

export async function handler(argv: ArgumentsCamelCase<ImagesArgs>): Promise<void> {
  const factory = await factoryInputs(argv);
  for (const note of factory?.notes ?? []) printErr(`${note}\n`);
  const { references, warnings, charts, offByDefault } = await gatherReferences(
    argv,
    await loadSpec(argv.spec),
    (factory?.images ?? []).map((input) => ({ input, origin: { source: 'the Image Factory schematic' } })),
  );
  for (const w of warnings) printErr(`warning: ${w}\n`);
  if (argv.json) {
    const rows = references.map((r) => ({
      reference: r.name,
      registry: r.ref.registry,
      repository: r.ref.repository,
      tag: r.ref.tag,
      digest: r.ref.digest,
      from: r.origins.map(formatOrigin),
    }));
    writeJson({
      images: rows,
      offByDefault: offByDefault.map((o) => ({ reference: o.image, from: o.from, off: o.off })),
      charts: charts.map((c) => ({
        name: c.chart.metadata.name,
        version: c.chart.metadata.version,
        appVersion: c.chart.metadata.appVersion,
        repository: c.artifact.repository,
        tag: c.artifact.tag,
      })),
      warnings,
    });
    return;
  }
  for (const r of references) printOut(`${r.name}  # from ${r.origins.map(formatOrigin).join('; ')}\n`);
  if (offByDefault.length > 0 && !argv['chart-all-images']) {
    printOut(`# off with these values (uncomment to carry, or pass --chart-all-images):\n`);
    for (const o of offByDefault) printOut(`# ${o.image}  # from ${o.from} (off: ${o.off})\n`);
  }
}
