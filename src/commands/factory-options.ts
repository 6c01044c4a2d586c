import type { Argv } from 'yargs';
import {
  BOOT_MEDIA,
  EMPTY_SCHEMATIC_ID,
  FACTORY_ARCHES,
  FACTORY_HOST,
  bootAssets,
  checkPlatform,
  checkSchematicId,
  installerImage,
  parseTalosRelease,
  usesPlatformInstaller,
  type BootAsset,
  type BootMedium,
  type FactoryArch,
  type FactoryTarget,
} from '../talos-factory/assets.js';
import { readSchematicFile, schematicIdOf } from '../talos-factory/schematic.js';
import { printable } from '../util/text.js';
import { UsageError } from './errors.js';

/** The Image Factory options of `export`. */
export interface FactoryArgs {
  'talos-schematic'?: string;
  'talos-schematic-id'?: string;
  'talos-version'?: string;
  'talos-boot-media': string[];
  'talos-platform': string;
  'talos-secureboot': boolean;
  arch: string[];
  /** export's own `--platform os/arch` list: the boot media's architectures when --arch is not given. */
  platform?: string[];
}

/** What the factory options add to an export. */
export interface FactoryInputs {
  schematicId: string;
  /** The installer image, to carry like any listed image. */
  images: string[];
  /** Boot media, fetched unpinned (the factory publishes no checksum); the bundle records their digests. */
  files: BootAsset[];
  /** Lines to print: the ID and where it came from, what is fetched and how. */
  notes: string[];
}

const repeatable = (v: string | string[]) => ([] as string[]).concat(v).flatMap((s) => s.split(','));

/** `--talos-schematic FILE`, `--talos-schematic-id ID`, `--talos-version`, `--talos-boot-media`, `--talos-platform`, `--talos-secureboot`, `--arch`. */
export function factoryOptions<T>(y: Argv<T>) {
  return y
    .option('talos-schematic', {
      type: 'string',
      describe:
        'Image Factory schematic YAML: its ID is computed offline as the factory computes it, and the installer for --talos-version is carried',
    })
    .option('talos-schematic-id', {
      type: 'string',
      describe: 'The schematic ID itself, as the Image Factory gave it (instead of --talos-schematic)',
    })
    .option('talos-version', {
      type: 'string',
      describe:
        'Talos release for the factory installer and boot media (v1.14.0); alone, it takes the schematic without customisation',
    })
    .option('talos-boot-media', {
      type: 'string',
      default: [] as string[],
      coerce: repeatable,
      describe: `Also carry these boot media from the Image Factory as files: ${BOOT_MEDIA.join(', ')} (pxe = kernel, initramfs and kernel command line; repeatable)`,
    })
    .option('talos-platform', {
      type: 'string',
      default: 'metal',
      describe: 'Talos platform of the installer and boot media, as the factory names it (metal, aws, gcp, nocloud, …)',
    })
    .option('talos-secureboot', {
      type: 'boolean',
      default: false,
      describe: 'The Secure Boot installer and boot media (…-secureboot)',
    })
    .option('arch', {
      type: 'string',
      default: [] as string[],
      coerce: repeatable,
      describe: `Architectures of the boot media: ${FACTORY_ARCHES.join(', ')} (repeatable; default: those --platform names, else amd64)`,
    });
}

/**
 * Reads and checks the factory options (the schematic file too) and returns
 * what they add to the export; undefined when none is given. Bad input is a
 * UsageError or SchematicError (exit 2) before anything is downloaded.
 */
export async function factoryInputs(argv: FactoryArgs): Promise<FactoryInputs | undefined> {
  const file = argv['talos-schematic'];
  const givenId = argv['talos-schematic-id'];
  const media = checkMedia(argv['talos-boot-media']);
  if (file === undefined && givenId === undefined && argv['talos-version'] === undefined) {
    if (media.length > 0)
      throw new UsageError('--talos-boot-media needs --talos-version (and the schematic: --talos-schematic)');
    return undefined;
  }
  if (argv['talos-version'] === undefined)
    throw new UsageError(
      '--talos-schematic names the customisation; add --talos-version (e.g. v1.14.0) for the release',
    );
  if (file !== undefined && givenId !== undefined)
    throw new UsageError('--talos-schematic and --talos-schematic-id name the same thing: give one');
  const release = parseTalosRelease(argv['talos-version']);
  const { platform, known } = checkPlatform(argv['talos-platform']);
  const notes: string[] = [];
  const schematicId = await resolveSchematicId(file, givenId, notes);
  const target: FactoryTarget = { schematicId, release, platform, secureBoot: argv['talos-secureboot'] };
  if (!known)
    notes.push(`--talos-platform ${platform} is not one of the platforms known here; the factory may not build it`);
  if (!usesPlatformInstaller(release) && platform !== 'metal')
    notes.push(
      `Talos ${release.tag} predates the per-platform installers: its installer is ${FACTORY_HOST}/installer/…`,
    );
  const files = bootAssets(target, media, bootArches(argv));
  if (files.length > 0)
    notes.push(
      `${files.length} boot asset${files.length > 1 ? 's' : ''} fetched from https://${FACTORY_HOST}/image/…: the factory publishes no checksum, so they are fetched unpinned and the bundle records the digest of what was downloaded`,
    );
  return { schematicId, images: [installerImage(target)], files, notes };
}

async function resolveSchematicId(
  file: string | undefined,
  givenId: string | undefined,
  notes: string[],
): Promise<string> {
  if (givenId !== undefined) {
    try {
      return checkSchematicId(givenId);
    } catch (err) {
      throw new UsageError(`--talos-schematic-id: ${(err as Error).message}`);
    }
  }
  if (file === undefined) {
    notes.push(`no --talos-schematic: the schematic without customisation, ID ${EMPTY_SCHEMATIC_ID}`);
    return EMPTY_SCHEMATIC_ID;
  }
  const id = schematicIdOf(await readSchematicFile(file), file);
  notes.push(`schematic ${printable(file)}: ID ${id} (computed offline, as the Image Factory computes it)`);
  return id;
}

function checkMedia(values: string[]): BootMedium[] {
  const media = [...new Set(values.map((v) => v.trim()).filter((v) => v !== ''))];
  for (const m of media)
    if (!(BOOT_MEDIA as readonly string[]).includes(m))
      throw new UsageError(
        `--talos-boot-media "${printable(m)}" is not a boot medium; choose from ${BOOT_MEDIA.join(', ')}`,
      );
  return media as BootMedium[];
}

/** `--arch`, else the linux/amd64 and linux/arm64 of `--platform`, else amd64. */
function bootArches(argv: FactoryArgs): FactoryArch[] {
  const given = [...new Set(argv.arch.map((a) => a.trim()).filter((a) => a !== ''))];
  for (const a of given)
    if (!(FACTORY_ARCHES as readonly string[]).includes(a))
      throw new UsageError(
        `--arch "${printable(a)}" is not an architecture the Image Factory builds (${FACTORY_ARCHES.join(', ')})`,
      );
  if (given.length > 0) return given as FactoryArch[];
  const fromPlatforms = (argv.platform ?? [])
    .flatMap((p) => p.split(','))
    .map((p) => /^linux\/(amd64|arm64)(\/.*)?$/.exec(p.trim())?.[1])
    .filter((a): a is FactoryArch => a !== undefined);
  return fromPlatforms.length > 0 ? [...new Set(fromPlatforms)] : ['amd64'];
}
