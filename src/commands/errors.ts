import { UserInputError } from '../util/user-input.js';

/** Exit codes, documented in the README and in `--help`. */
export const ExitCode = {
  ok: 0,
  /** Anything that went wrong outside the other classes: network, registry, disk. */
  failure: 1,
  /** The command line or an input file is wrong; nothing was done. */
  usage: 2,
  /** A bundle is damaged or incomplete, or a registry does not match its bundle. */
  damaged: 3,
  /** A signature was required (--public-key) and is missing, invalid, or by another key. */
  untrusted: 4,
  /** An image fails the signature policy (--verify-signatures): unsigned, signed by another, or denied. */
  unsigned: 5,
  /** Stopped by Ctrl-C; rerunning the same command resumes. */
  interrupted: 130,
} as const;

/** Bad input from the user: exit 2, message only (no stack). */
export class UsageError extends UserInputError {
  override name = 'UsageError';
}

/** A check found problems; the report was already printed. */
export class CheckFailed extends Error {
  override name = 'CheckFailed';
  constructor(
    message: string,
    readonly exitCode: number = ExitCode.damaged,
  ) {
    super(message);
  }
}
