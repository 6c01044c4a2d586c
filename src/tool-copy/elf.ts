import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

/** The CPUs an executable is built for, by their ELF machine number (e_machine). */
export const MACHINES = { x64: 62, arm64: 183 } as const;

export type ToolArch = keyof typeof MACHINES;

/**
 * The ELF machine of the file at `path`, or undefined when it is not a 64-bit
 * little-endian ELF file: enough to refuse a file for the wrong CPU (or no
 * executable at all) before it is carried across.
 */
export async function elfMachineOf(path: string): Promise<number | undefined> {
  // Non-blocking: a FIFO under that name must not hang the export; it is not a file anyway.
  const fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    if (!(await fh.stat()).isFile()) return undefined;
    const header = Buffer.alloc(20);
    const { bytesRead } = await fh.read(header, 0, header.length, 0);
    if (bytesRead < header.length) return undefined;
    if (header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2 || header[5] !== 1) return undefined;
    return header.readUInt16LE(18);
  } finally {
    await fh.close();
  }
}
