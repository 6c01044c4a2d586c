/**
 * The source of a worker that runs one self-contained function, for
 * `new Worker(source, { eval: true })`: no file to find beside the running
 * script, so the same code works from the compiled files, the test runner and
 * a single bundled executable. The function gets `require` (at hand in an
 * eval'd worker) and `args`, each written as JSON.
 *
 * Run from TypeScript sources (tsx, the benchmark scripts), esbuild keeps
 * function names by wrapping them in a `__name(fn, "name")` helper that lives
 * in the module, not in the function: the worker, which gets the function's
 * text alone, is given a stand-in that leaves each function as it is.
 */
export function workerSource(main: (...args: never[]) => void, ...args: unknown[]): string {
  const rest = args.map((a) => `, ${JSON.stringify(a)}`).join('');
  return `var __name = (fn) => fn;\n(${main.toString()})(require${rest});`;
}
