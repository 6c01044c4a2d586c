import { dig, imagesFromManifests, loadDocuments, ManifestError, type FoundImage } from './kubernetes.js';

/** Fields of a v1alpha1 machine config that name an image. */
const IMAGE_FIELDS: Array<[string, string[]]> = [
  ['machine.install.image', ['machine', 'install', 'image']],
  ['machine.kubelet.image', ['machine', 'kubelet', 'image']],
  ['cluster.apiServer.image', ['cluster', 'apiServer', 'image']],
  ['cluster.controllerManager.image', ['cluster', 'controllerManager', 'image']],
  ['cluster.scheduler.image', ['cluster', 'scheduler', 'image']],
  ['cluster.proxy.image', ['cluster', 'proxy', 'image']],
  ['cluster.etcd.image', ['cluster', 'etcd', 'image']],
  ['cluster.coreDNS.image', ['cluster', 'coreDNS', 'image']],
];

export interface TalosConfigImages {
  images: FoundImage[];
  /** `cluster.extraManifests` URLs: their images cannot be read offline. */
  unreadable: string[];
}

/**
 * The images a Talos machine config names: the v1alpha1 document's image
 * fields, system extensions, and the images of inline manifests. Newer configs
 * are multi-document; the other documents name no images.
 */
export function imagesFromTalosConfig(text: string, source: string): TalosConfigImages {
  const docs = loadDocuments(text, source);
  const images: FoundImage[] = [];
  const unreadable: string[] = [];
  let sawMachineConfig = false;
  for (const doc of docs) {
    if (typeof doc !== 'object' || doc === null || !('machine' in doc || 'cluster' in doc)) continue;
    sawMachineConfig = true;
    for (const [where, path] of IMAGE_FIELDS) {
      const v = dig(doc, path);
      if (typeof v === 'string' && v.trim() !== '') images.push({ image: v.trim(), where });
    }
    const extensions = dig(doc, ['machine', 'install', 'extensions']);
    if (Array.isArray(extensions)) {
      extensions.forEach((e, i) => {
        const v = (e as { image?: unknown })?.image;
        if (typeof v === 'string') images.push({ image: v, where: `machine.install.extensions[${i}]` });
      });
    }
    const inline = dig(doc, ['cluster', 'inlineManifests']);
    if (Array.isArray(inline)) {
      inline.forEach((m, i) => {
        const contents = (m as { contents?: unknown; name?: unknown })?.contents;
        if (typeof contents !== 'string') return;
        const label = `cluster.inlineManifests[${typeof (m as { name?: unknown }).name === 'string' ? (m as { name: string }).name : i}]`;
        for (const found of imagesFromManifests(contents, `${source} ${label}`))
          images.push({ image: found.image, where: `${label} ${found.where}` });
      });
    }
    const extra = dig(doc, ['cluster', 'extraManifests']);
    if (Array.isArray(extra)) for (const u of extra) if (typeof u === 'string') unreadable.push(u);
  }
  if (!sawMachineConfig)
    throw new ManifestError(`${source}: no Talos v1alpha1 machine config document (with "machine" or "cluster") found`);
  return { images, unreadable };
}
