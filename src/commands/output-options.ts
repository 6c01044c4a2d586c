import type { Argv } from 'yargs';

export interface OutputArgs {
  json: boolean;
  quiet: boolean;
}

export function outputOptions<T>(y: Argv<T>) {
  return y
    .option('json', {
      type: 'boolean',
      default: false,
      describe: 'Print a machine-readable result on stdout (progress is suppressed)',
    })
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'Print only warnings and errors' });
}
