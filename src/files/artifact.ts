import { CARRIED_REGISTRY } from '../bundle/carried.js';
import { artifactManifest, EMPTY_CONFIG, type BuiltArtifact } from '../oci/artifact.js';
import { sha256Digest } from '../oci/digest.js';
import { fileMediaType } from './media-type.js';
import { fileRepository, fileTag } from './names.js';
import type { StagedFile } from './staged.js';

/**
 * The artifact type `oras push` writes when none is given: a carried file is
 * what oras itself would have pushed, so `oras pull` needs nothing to read it.
 */
export const FILE_ARTIFACT_TYPE = 'application/vnd.unknown.artifact.v1';

/** The annotation oras names a pulled layer's file by. */
export const TITLE_ANNOTATION = 'org.opencontainers.image.title';

/** Re-exported so callers name the one registry carried files are recorded under. */
export { CARRIED_REGISTRY };

/**
 * A file as the OCI artifact the bundle carries, in the ORAS convention: the
 * empty config, one layer holding the file's bytes, titled with its name. The
 * layer is read from `staged.path` when the bundle is written, and hashed
 * again there.
 */
export function fileArtifact(
  file: { name: string; source: string; mode: number },
  staged: StagedFile,
  prefix: string,
): BuiltArtifact {
  const config = { mediaType: EMPTY_CONFIG.mediaType, digest: sha256Digest(EMPTY_CONFIG.bytes), size: 2 };
  const layer = { mediaType: fileMediaType(file.name), digest: staged.digest, size: staged.size };
  const manifest = artifactManifest({
    artifactType: FILE_ARTIFACT_TYPE,
    config,
    layers: [{ ...layer, annotations: { [TITLE_ANNOTATION]: file.name } }],
  });
  return {
    repository: fileRepository(prefix, file.name),
    tag: fileTag(file.name),
    carried: { kind: 'file', name: file.name, source: file.source, mode: file.mode },
    manifest: manifest.bytes,
    blobs: [
      { ...config, role: 'config', content: { bytes: Buffer.from(EMPTY_CONFIG.bytes) } },
      { ...layer, role: 'layer', content: { path: staged.path } },
    ],
  };
}
