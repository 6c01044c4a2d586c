import { readSmallRegularFile, SmallFileError } from '../util/small-file.js';
import { parseSidecar } from '../bundle/sidecar.js';

/** The `.sha256` sidecar against the whole file; `reason` says why an invalid one cannot be used. */
export interface SidecarCheck {
  status: 'ok' | 'mismatch' | 'absent' | 'invalid' | 'unchecked';
  expected?: string;
  actual?: string;
  reason?: string;
}

/** A `sha256sum` line is under 200 bytes; a sidecar much larger than that is not one. */
const MAX_SIDECAR_BYTES = 4096;

export async function checkSidecar(path: string, actual: string | undefined): Promise<SidecarCheck> {
  let text: string | undefined;
  try {
    text = await readSmallRegularFile(`${path}.sha256`, MAX_SIDECAR_BYTES);
  } catch (err) {
    if (!(err instanceof SmallFileError)) throw err;
    return { status: 'invalid', reason: `${path}.sha256 ${err.message}` };
  }
  if (text === undefined) return { status: 'absent' };
  const parsed = parseSidecar(text);
  if (!parsed) return { status: 'invalid', reason: `${path}.sha256 is not a sha256sum line` };
  if (actual === undefined) return { status: 'unchecked', expected: parsed.sha256 };
  return { status: parsed.sha256 === actual ? 'ok' : 'mismatch', expected: parsed.sha256, actual };
}
