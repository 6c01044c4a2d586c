// Reads what can be checked of an executable built for another CPU without running it: its ELF
// machine, and the single-executable blob that postject stored in it as an ELF note named
// NODE_SEA_BLOB (found the way Node finds it at start-up: in the PT_NOTE segments).
import { open } from 'node:fs/promises';

export const EM_X86_64 = 62;
export const EM_AARCH64 = 183;

/** The note name (without its NUL) postject gives the blob, and Node looks for. */
export const SEA_RESOURCE = 'NODE_SEA_BLOB';

const PT_NOTE = 4;

interface Elf64 {
  machine: number;
  notes: { offset: number; size: number; align: number }[];
}

/** The machine and note segments of a 64-bit little-endian ELF file. */
async function readElf64(path: string): Promise<Elf64> {
  const fh = await open(path, 'r');
  try {
    const header = Buffer.alloc(64);
    await fh.read(header, 0, 64, 0);
    if (header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2 || header[5] !== 1)
      throw new Error(`${path} is not a 64-bit little-endian ELF file`);
    const phoff = Number(header.readBigUInt64LE(32));
    const phentsize = header.readUInt16LE(54);
    const phnum = header.readUInt16LE(56);
    const table = Buffer.alloc(phentsize * phnum);
    await fh.read(table, 0, table.length, phoff);
    const notes = [];
    for (let i = 0; i < phnum; i++) {
      const ph = table.subarray(i * phentsize, (i + 1) * phentsize);
      if (ph.readUInt32LE(0) !== PT_NOTE) continue;
      notes.push({
        offset: Number(ph.readBigUInt64LE(8)),
        size: Number(ph.readBigUInt64LE(32)),
        align: Number(ph.readBigUInt64LE(48)),
      });
    }
    return { machine: header.readUInt16LE(18), notes };
  } finally {
    await fh.close();
  }
}

export async function elfMachine(path: string): Promise<number> {
  return (await readElf64(path)).machine;
}

/** The descriptor of the note named `name` in `path`'s note segments, or undefined. */
export async function elfNote(path: string, name: string = SEA_RESOURCE): Promise<Buffer | undefined> {
  const elf = await readElf64(path);
  const fh = await open(path, 'r');
  try {
    for (const segment of elf.notes) {
      const bytes = Buffer.alloc(segment.size);
      await fh.read(bytes, 0, segment.size, segment.offset);
      const found = findNote(bytes, name, segment.align === 8 ? 8 : 4);
      if (found) return found;
    }
    return undefined;
  } finally {
    await fh.close();
  }
}

/** Walks the notes of one segment: namesz, descsz, type, then name and descriptor, each padded. */
function findNote(segment: Buffer, name: string, align: number): Buffer | undefined {
  const pad = (n: number) => Math.ceil(n / align) * align;
  let at = 0;
  while (at + 12 <= segment.length) {
    const namesz = segment.readUInt32LE(at);
    const descsz = segment.readUInt32LE(at + 4);
    const nameStart = at + 12;
    const descStart = nameStart + pad(namesz);
    if (descStart + descsz > segment.length) return undefined;
    const noteName = segment
      .subarray(nameStart, nameStart + namesz)
      .toString('latin1')
      .replace(/\0+$/, '');
    if (noteName === name) return segment.subarray(descStart, descStart + descsz);
    at = descStart + pad(descsz);
  }
  return undefined;
}
