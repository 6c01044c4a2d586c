import { readFile } from 'node:fs/promises';
import { checkSignature, signBytes } from '../bundle/signature.js';
import { CheckFailed, ExitCode, UsageError } from './errors.js';

async function readKeyFile(file: string, flag: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    throw new UsageError(`cannot read ${flag} ${file}`);
  }
}

/** The signer for `export --sign-key`, checked up front so a bad key fails before any download. */
export async function loadSigner(file: string | undefined): Promise<((bytes: Buffer) => Buffer) | undefined> {
  if (!file) return undefined;
  const pem = await readKeyFile(file, '--sign-key');
  signBytes(Buffer.from('probe'), pem, file);
  return (bytes) => signBytes(bytes, pem, file);
}

/** Refuses (exit 4) a bundle whose signature is missing or does not verify with the trusted key. */
export async function requireSignature(
  bundle: string,
  publicKeyFile: string,
  metadataBytes: Buffer | undefined,
  signature: Buffer | undefined,
): Promise<string> {
  const pem = await readKeyFile(publicKeyFile, '--public-key');
  const check = checkSignature(metadataBytes, signature, pem, publicKeyFile);
  if (check.status !== 'valid')
    throw new CheckFailed(
      `${bundle}: signature ${check.status}: ${check.reason}; refusing to use it`,
      ExitCode.untrusted,
    );
  return check.keyId;
}
