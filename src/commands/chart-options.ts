import type { Argv } from 'yargs';
import { DEFAULT_CHART_PREFIX } from '../charts/helm-artifact.js';
import { printable } from '../util/text.js';
import { UsageError } from './errors.js';

/** `--chart-prefix`, for the commands that carry charts (export). */
export interface ChartPrefixArgs {
  'chart-prefix': string;
}

export function chartPrefixOption<T>(y: Argv<T>) {
  return y.option('chart-prefix', {
    type: 'string',
    default: DEFAULT_CHART_PREFIX,
    describe: 'Repository folder charts land in: PREFIX/NAME:VERSION (helm pull oci://REGISTRY/PREFIX/NAME)',
  });
}

const PREFIX = /^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/;

/** The prefix checked: lower-case OCI repository components, no leading or trailing `/`. */
export function parseChartPrefix(text: string): string {
  const prefix = String(text).trim();
  if (prefix.length > 128 || !PREFIX.test(prefix))
    throw new UsageError(
      `--chart-prefix "${printable(prefix, 80)}" is not a repository path (lower-case letters, digits, '.', '_', '-', parts joined by '/'), e.g. charts or platform/charts`,
    );
  return prefix;
}
