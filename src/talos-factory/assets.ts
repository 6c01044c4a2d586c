import { UserInputError } from '../util/user-input.js';

/** The public Image Factory: its registry serves the installers, its HTTP frontend the boot media. */
export const FACTORY_HOST = 'factory.talos.dev';

/** The schematic with no customisation (siderolabs/image-factory README, "well-known schematic IDs"). */
export const EMPTY_SCHEMATIC_ID = '376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba';

/** A Talos release as the factory names it in tags and URLs: `v1.14.0`, `v1.14.0-rc.1`. */
export interface TalosRelease {
  major: number;
  minor: number;
  /** The tag and URL part, with its `v`. */
  tag: string;
}

/**
 * From Talos 1.14 `ghcr.io/siderolabs/installer` is no longer published and the
 * installer is `<platform>-installer` (Talos's own default install image).
 */
export const PLATFORM_INSTALLER_SINCE = { major: 1, minor: 14 } as const;

/** The architectures the factory builds. */
export const FACTORY_ARCHES = ['amd64', 'arm64'] as const;
export type FactoryArch = (typeof FACTORY_ARCHES)[number];

/**
 * Talos platforms whose images the factory builds (names as Talos spells
 * them). Others are taken if they fit the name grammar, with a note.
 */
export const KNOWN_PLATFORMS = [
  'metal',
  'akamai',
  'aws',
  'azure',
  'cloudstack',
  'digital-ocean',
  'exoscale',
  'gcp',
  'hcloud',
  'nocloud',
  'opennebula',
  'openstack',
  'oracle',
  'scaleway',
  'upcloud',
  'vmware',
  'vultr',
] as const;

/** What `--talos-boot-media` takes. */
export const BOOT_MEDIA = ['iso', 'raw.zst', 'raw.xz', 'pxe', 'uki'] as const;
export type BootMedium = (typeof BOOT_MEDIA)[number];

/** One boot asset to carry: where the factory serves it and the file name it gets in the bundle. */
export interface BootAsset {
  url: string;
  name: string;
}

/** What names the installer and the boot media. */
export interface FactoryTarget {
  schematicId: string;
  release: TalosRelease;
  platform: string;
  secureBoot: boolean;
}

/** A full release version (the installer tag needs the patch level); a leading `v` is added when missing. */
export function parseTalosRelease(text: string): TalosRelease {
  const m = /^v?(\d{1,3})\.(\d{1,3})\.(\d{1,4})(-[0-9A-Za-z][0-9A-Za-z.-]{0,63})?$/.exec(text.trim());
  if (!m)
    throw new UserInputError(
      `--talos-version "${text}" is not a Talos release as the Image Factory names it (v1.14.0, v1.13.9, v1.14.0-rc.1)`,
    );
  return { major: Number(m[1]), minor: Number(m[2]), tag: `v${m[1]}.${m[2]}.${m[3]}${m[4] ?? ''}` };
}

/** A platform name: lower-case, as it goes into an image repository and a file name. */
export function checkPlatform(platform: string): { platform: string; known: boolean } {
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(platform))
    throw new UserInputError(
      `--talos-platform "${platform}" is not a platform name (lower-case letters, digits and -, e.g. ${KNOWN_PLATFORMS.slice(0, 4).join(', ')})`,
    );
  return { platform, known: (KNOWN_PLATFORMS as readonly string[]).includes(platform) };
}

/** A schematic ID: 64 lower-case hex digits. */
export function checkSchematicId(id: string): string {
  if (!/^[0-9a-f]{64}$/.test(id))
    throw new UserInputError(`schematic ID "${id.slice(0, 80)}" is not 64 lower-case hex digits`);
  return id;
}

export function usesPlatformInstaller(release: TalosRelease): boolean {
  return (
    release.major > PLATFORM_INSTALLER_SINCE.major ||
    (release.major === PLATFORM_INSTALLER_SINCE.major && release.minor >= PLATFORM_INSTALLER_SINCE.minor)
  );
}

/**
 * The installer image for the target: `factory.talos.dev/<platform>-installer[-secureboot]/<id>:<version>`
 * from 1.14, `factory.talos.dev/installer[-secureboot]/<id>:<version>` before. It
 * is one multi-arch image; `--platform` picks the architectures carried.
 */
export function installerImage(target: FactoryTarget): string {
  const secure = target.secureBoot ? '-secureboot' : '';
  const repository = usesPlatformInstaller(target.release)
    ? `${target.platform}-installer${secure}`
    : `installer${secure}`;
  return `${FACTORY_HOST}/${repository}/${target.schematicId}:${target.release.tag}`;
}

/**
 * The factory's file names for one boot medium and architecture (its README,
 * "GET /image/:schematic/:version/:path"): `metal-amd64.iso`,
 * `metal-amd64.raw.zst`, `kernel-amd64` + `initramfs-amd64.xz` + the kernel
 * command line `cmdline-metal-amd64`, `metal-amd64-secureboot-uki.efi`.
 */
export function bootAssetNames(target: FactoryTarget, medium: BootMedium, arch: FactoryArch): string[] {
  const secure = target.secureBoot ? '-secureboot' : '';
  const base = `${target.platform}-${arch}${secure}`;
  switch (medium) {
    case 'iso':
      return [`${base}.iso`];
    case 'raw.zst':
    case 'raw.xz':
      return [`${base}.${medium}`];
    case 'pxe':
      if (target.secureBoot)
        throw new UserInputError(
          '--talos-boot-media pxe is the plain kernel and initramfs; a Secure Boot machine boots the signed UKI: use --talos-boot-media uki',
        );
      return [`kernel-${arch}`, `initramfs-${arch}.xz`, `cmdline-${target.platform}-${arch}`];
    case 'uki':
      if (!target.secureBoot)
        throw new UserInputError('--talos-boot-media uki is the Secure Boot image: add --talos-secureboot, or use pxe');
      return [`${target.platform}-${arch}-secureboot-uki.efi`];
  }
}

/**
 * The boot assets to fetch, one per medium and architecture, each named
 * `talos-<version>-<factory file name>` in the bundle. The factory publishes no
 * checksum for them: they are fetched unpinned, and the bundle records the
 * digest of what was downloaded.
 */
export function bootAssets(target: FactoryTarget, media: BootMedium[], arches: FactoryArch[]): BootAsset[] {
  const seen = new Set<string>();
  const assets: BootAsset[] = [];
  for (const arch of arches)
    for (const medium of media)
      for (const file of bootAssetNames(target, medium, arch)) {
        if (seen.has(file)) continue;
        seen.add(file);
        assets.push({
          url: `https://${FACTORY_HOST}/image/${target.schematicId}/${target.release.tag}/${file}`,
          name: `talos-${target.release.tag}-${file}`,
        });
      }
  return assets;
}
