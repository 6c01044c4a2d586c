import { UserInputError } from '../util/user-input.js';

/**
 * A chart a source served that fails a check: a digest that does not match,
 * an archive outside the bounds, a Chart.yaml that does not parse. Exit 1,
 * like any other upstream failure; the message names the chart and what to do.
 */
export class ChartError extends Error {
  override name = 'ChartError';
}

/**
 * A chart request the user wrote that cannot be met: a malformed `--chart`, a
 * range nothing matches, a local chart that is broken. Exit 2.
 */
export class ChartRequestError extends UserInputError {
  override name = 'ChartRequestError';
}
