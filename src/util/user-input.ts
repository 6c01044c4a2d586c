/**
 * The user's own input is wrong: an option, a file they named, a list or a
 * spec they wrote. The CLI answers exit 2 with the message alone, and nothing
 * was done. Errors of that kind extend this, wherever they are raised, so no
 * layer has to catch and rethrow them as something else.
 */
export class UserInputError extends Error {
  override name = 'UserInputError';
}
