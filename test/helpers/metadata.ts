// A bundle's metadata in tests: read out of a bundle on disk (metadataOf), and hand-built
// fixtures (metadataFixture, imageFixture) for unit tests that need a document without a tar.
import { closeSync, openSync, readSync } from 'node:fs';
import type { BundleMetadata, ImageRecord } from '../../src/bundle/format.js';

const BLOCK = 512;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

function readAt(fd: number, length: number, position: number): Buffer {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/**
 * The parsed `airgap-bundle.json` of a bundle file (or of the first volume of a set), found by
 * walking the ustar headers: only the headers and the document itself are read, however large
 * the bundle. No validation: tests look at exactly what was written.
 */
export function metadataOf(bundle: string): BundleMetadata {
  const fd = openSync(bundle, 'r');
  try {
    for (let at = 0; ;) {
      const header = readAt(fd, BLOCK, at);
      if (header.length < BLOCK || header.every((b) => b === 0))
        throw new Error(`${bundle} holds no airgap-bundle.json`);
      const name = header.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
      const size = parseInt(header.subarray(124, 136).toString('latin1').replace(/\0.*$/s, '').trim() || '0', 8);
      if (name === 'airgap-bundle.json' || name === './airgap-bundle.json')
        return JSON.parse(readAt(fd, size, at + BLOCK).toString('utf8')) as BundleMetadata;
      at += BLOCK + Math.ceil(size / BLOCK) * BLOCK;
    }
  } finally {
    closeSync(fd);
  }
}

/** An image record: an OCI manifest of 10 bytes, no platforms, nothing absent, no blobs; `over` gives the rest. */
export function imageFixture(over: Partial<ImageRecord> = {}): ImageRecord {
  return {
    reference: '',
    registry: '',
    repository: '',
    digest: '',
    mediaType: OCI_MANIFEST,
    size: 10,
    platforms: [],
    absent: [],
    blobs: [],
    bytes: 0,
    ...over,
  };
}

/** Bundle metadata around `images`: this format and version, a tool, no platform filter, no blobs; `over` gives the rest. */
export function metadataFixture(images: ImageRecord[], over: Partial<BundleMetadata> = {}): BundleMetadata {
  return {
    format: 'airgap-bundle/v1',
    formatVersion: 1,
    tool: { name: 'airgap-bundle', version: 'test' },
    platforms: null,
    images,
    blobs: [],
    ...over,
  };
}
