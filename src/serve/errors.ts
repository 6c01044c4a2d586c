/**
 * Error codes of the OCI distribution spec (plus NOT_FOUND and RANGE_INVALID for
 * what it leaves open), with the status each is answered with.
 */
export const ERROR_STATUS = {
  NAME_INVALID: 400,
  DIGEST_INVALID: 400,
  MANIFEST_INVALID: 400,
  PAGINATION_NUMBER_INVALID: 400,
  UNAUTHORIZED: 401,
  NAME_UNKNOWN: 404,
  MANIFEST_UNKNOWN: 404,
  BLOB_UNKNOWN: 404,
  NOT_FOUND: 404,
  UNSUPPORTED: 405,
  RANGE_INVALID: 416,
  TOOMANYREQUESTS: 429,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** A request the server answers with the spec's error body; never a crash. */
export class RegistryProblem extends Error {
  override name = 'RegistryProblem';
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }

  /** `{"errors":[{"code","message"}]}`; the message is the server's own text, never the client's. */
  body(): string {
    return JSON.stringify({ errors: [{ code: this.code, message: this.message }] });
  }
}
