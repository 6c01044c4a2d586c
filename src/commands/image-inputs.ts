import { readFile } from 'node:fs/promises';
import { collectReferences, formatOrigin, parseImageListText, type ListedReference, type Origin } from '../reference/image-list.js';
import { UsageError } from './errors.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Every image reference of a run, from arguments, list files (`-` = stdin) and
 * the spec, merged. Every invalid line is reported at once, with its file and
 * line number, before anything is downloaded.
 */
export async function gatherReferences(sources: { args: string[]; files: string[]; specImages?: { file: string; images: string[] } }): Promise<ListedReference[]> {
  const inputs: Array<{ input: string; origin: Origin }> = [];
  if (sources.specImages) {
    sources.specImages.images.forEach((input, i) => inputs.push({ input, origin: { source: `${sources.specImages!.file} images[${i}]` } }));
  }
  for (const file of sources.files) {
    let text: string;
    try {
      text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read image list ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
    }
    inputs.push(...parseImageListText(text, file === '-' ? '<stdin>' : file));
  }
  sources.args.forEach((input, i) => inputs.push({ input, origin: { source: `argument ${i + 1}` } }));

  const { references, problems } = collectReferences(inputs);
  if (problems.length > 0) {
    const lines = problems.map((p) => `  ${formatOrigin(p.origin)}: "${p.input}": ${p.reason}`);
    throw new UsageError(`${problems.length} invalid image reference${problems.length > 1 ? 's' : ''}; nothing was downloaded:\n${lines.join('\n')}`);
  }
  if (references.length === 0) {
    throw new UsageError('no image references given: pass them as arguments, with -f FILE (one per line, - for stdin), or with --spec FILE.yaml');
  }
  return references;
}
