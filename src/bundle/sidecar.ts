/**
 * The `NAME.tar.sha256` sidecar, in exactly the format `sha256sum -c` reads, so
 * the receiving side can check a bundle with coreutils alone.
 */
export function sidecarLine(sha256Hex: string, fileName: string): string {
  return `${sha256Hex}  ${fileName}\n`;
}

/** The checksum in a sidecar, or undefined when the text is not a sha256sum line. */
export function parseSidecar(text: string): { sha256: string; fileName: string } | undefined {
  const m = /^([a-f0-9]{64}) [ *](.+)$/m.exec(text.trim());
  return m ? { sha256: m[1]!, fileName: m[2]! } : undefined;
}
