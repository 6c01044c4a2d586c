/**
 * The source of a worker that runs one self-contained function, for
 * `new Worker(source, { eval: true })`: no file to find beside the running
 * script, so the same code works from the compiled files, the test runner and
 * a single bundled executable. The function gets `require` (at hand in an
 * eval'd worker) and `args`: a function is passed as its own source, so a
 * worker can be put together from shared pieces; anything else as JSON.
 *
 * Run from TypeScript sources (tsx, the benchmark scripts), esbuild keeps
 * function names by wrapping them in a `__name(fn, "name")` helper that lives
 * in the module, not in the function: the worker, which gets the function's
 * text alone, is given a stand-in that leaves each function as it is.
 */
export function workerSource(main: (...args: never[]) => void, ...args: unknown[]): string {
  const rest = args.map((a) => `, ${typeof a === 'function' ? a.toString() : JSON.stringify(a)}`).join('');
  return `var __name = (fn) => fn;\n(${main.toString()})(require${rest});`;
}

/** What a worker's function gets instead of imports: the modules it may load. */
export type WorkerRequire = (id: 'node:worker_threads' | 'node:crypto') => unknown;
