import type { ArgumentsCamelCase, Argv } from 'yargs';
import { formatOrigin } from '../reference/image-list.js';
import { gatherReferences, imageSourceOptions, loadSpec, type ImageSourceArgs } from './image-inputs.js';
import { outputOptions, type OutputArgs } from './output-options.js';
import { printErr, printOut, writeJson } from '../ui/output.js';

interface ImagesArgs extends ImageSourceArgs, OutputArgs {}

export const command = 'images [images..]';
export const describe =
  'Print the resolved image list (normalised, merged, with where each came from) without downloading';

export function builder(y: Argv): Argv<ImagesArgs> {
  return imageSourceOptions(outputOptions(y))
    .example('talosctl images | $0 images -f -', 'Normalise a talosctl list')
    .example(
      '$0 images --from-talos-config controlplane.yaml --from-manifests apps/ > cluster.images',
      'Collect every image a cluster needs, then review the file',
    )
    .example('$0 images --from-manifests apps/ | $0 export -f - -o apps.tar', 'The output is itself a valid image list')
    .epilog(
      'Each line is a full reference followed by a "# from" comment: the output can be edited and fed back with -f.',
    ) as unknown as Argv<ImagesArgs>;
}

export async function handler(argv: ArgumentsCamelCase<ImagesArgs>): Promise<void> {
  const { references, warnings } = await gatherReferences(argv, await loadSpec(argv.spec));
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
    writeJson({ images: rows, warnings });
    return;
  }
  for (const r of references) printOut(`${r.name}  # from ${r.origins.map(formatOrigin).join('; ')}\n`);
}
