/**
 * What a chart's templates say about images, read as text (the templates
 * cannot be run here): which files mention `image:` at all, and which name
 * an image literally (`image: busybox:1.36`, no template expression). A
 * chart whose templates mention images that no discovery method found, and a
 * literal image that is not in the list, are reported: never guessed at.
 */

/** One `image:` line of a template. */
export interface ImageMention {
  file: string;
  line: number;
  /** The image, when the line names one literally; undefined when it is a template expression. */
  literal?: string;
}

/** Most mentions kept per chart (a hostile chart may repeat the line a million times). */
export const MAX_MENTIONS = 200;
const MAX_TEMPLATE_BYTES = 4 << 20;

const IMAGE_LINE = /^[ \t]*(?:-[ \t]*)?["']?image["']?[ \t]*:[ \t]*(.*)$/;
const LITERAL = /^["']?([A-Za-z0-9][A-Za-z0-9._:/@-]*)["']?[ \t]*(?:#.*)?$/;

/** The `image:` lines of the chart's own templates (`templates/…`), literal images recognised. */
export function imageMentions(files: ReadonlyMap<string, Buffer>): ImageMention[] {
  const out: ImageMention[] = [];
  for (const [file, bytes] of files) {
    if (!file.startsWith('templates/') || bytes.length > MAX_TEMPLATE_BYTES) continue;
    const lines = bytes.toString('utf8').split('\n');
    for (let i = 0; i < lines.length && out.length < MAX_MENTIONS; i++) {
      const m = IMAGE_LINE.exec(lines[i]!);
      if (!m) continue;
      const value = m[1]!.trim();
      if (value === '' || value.startsWith('|') || value.startsWith('>')) continue;
      const literal = value.includes('{{') ? undefined : LITERAL.exec(value)?.[1];
      out.push({ file, line: i + 1, ...(literal ? { literal } : {}) });
    }
  }
  return out;
}
