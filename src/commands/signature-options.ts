import type { CountersignKey } from '../signatures/countersign.js';
import type { Argv } from 'yargs';
import type { ImageSignatures } from '../signatures/check-images.js';
import type { SignatureOptions } from '../signatures/check-images.js';
import { printErr } from '../ui/output.js';
import { table } from '../ui/format.js';
import { printable } from '../util/text.js';
import { UsageError } from './errors.js';

/** Options that check who signed each image against a policy (keyless and key, offline). */
export interface SignatureArgs {
  'verify-signatures'?: string;
  'trusted-root'?: string;
  'require-signatures': boolean;
}

export function signatureOptions<T>(y: Argv<T>) {
  return y
    .option('verify-signatures', {
      type: 'string',
      describe:
        "Check every image's signature against this policy (Talos ImageVerificationConfig rules: keyless, publicKey, skip, deny); exit 5 when one fails",
    })
    .option('trusted-root', {
      type: 'string',
      describe: 'Sigstore trusted_root.json for keyless signatures (default: the public-good root shipped inside)',
    })
    .option('require-signatures', {
      type: 'boolean',
      default: false,
      describe:
        'With --verify-signatures: refuse an image no rule matches (default: it passes unverified, as in Talos)',
    });
}

/**
 * The policy and trust root the options name, read and checked before any
 * bundle is (exit 2 on a mistake). Sigstore's libraries are loaded only here,
 * when signatures are asked for.
 */
export async function signatureOptionsFrom(argv: SignatureArgs): Promise<SignatureOptions | undefined> {
  const policy = argv['verify-signatures'];
  if (policy === undefined) {
    if (argv['trusted-root'] !== undefined || argv['require-signatures'])
      throw new UsageError('--trusted-root and --require-signatures go with --verify-signatures POLICY');
    return undefined;
  }
  const [{ loadPolicy }, { loadTrustRoot }] = await Promise.all([
    import('../signatures/policy.js'),
    import('../signatures/trust-root.js'),
  ]);
  return {
    policy: loadPolicy(policy),
    trust: loadTrustRoot(argv['trusted-root']),
    requireSignatures: argv['require-signatures'],
  };
}

/**
 * `--countersign-key`, which signs what the policy verified and so needs one:
 * the key read (one line naming the flag when it cannot be), or undefined.
 */
export async function countersignKeyFrom(
  argv: { 'countersign-key'?: string },
  signatures: SignatureOptions | undefined,
): Promise<CountersignKey | undefined> {
  const path = argv['countersign-key'];
  if (path === undefined) return undefined;
  if (!signatures)
    throw new UsageError('--countersign-key signs what the policy verified: give --verify-signatures POLICY too');
  return (await import('../signatures/countersign.js')).loadCountersignKey(path);
}

/**
 * Without --trusted-root, the root the bundle carries is used when the
 * bundle's signature was verified (`signedBy`: the key); `say` gets the line
 * that tells why it is not used otherwise.
 */
export async function preferCarriedRoot(
  opts: SignatureOptions | undefined,
  argv: SignatureArgs,
  carried: { source: string; json: string } | undefined,
  signedBy: string | undefined,
  say: (line: string) => void,
): Promise<SignatureOptions | undefined> {
  if (!opts || argv['trusted-root'] !== undefined || !carried) return opts;
  const { carriedRoot } = await import('../signatures/trust-root.js');
  const { root, note } = carriedRoot(carried, signedBy);
  if (note) say(note);
  return root ? { ...opts, trust: root } : opts;
}

/** One line naming the images that fail the policy, or undefined when none does. */
export function unsignedImages(results: ImageSignatures[]): string | undefined {
  const failed = results.filter((r) => r.status === 'refused' || r.status === 'denied');
  if (failed.length === 0) return undefined;
  const first = failed[0]!;
  const more = failed.length > 1 ? ` (and ${failed.length - 1} more)` : '';
  return `${failed.length} of ${results.length} images fail the signature policy: ${printable(first.reference)} (${first.rule ? `${first.rule}: ` : ''}${printable(first.reason ?? first.status, 300)})${more}`;
}

/** The signer table on stderr: every string from the bundle or a certificate escaped. */
export function printSignatures(results: ImageSignatures[], opts: SignatureOptions, problemsOnly: boolean): void {
  const out = (s: string) => printErr(`${s}\n`);
  if (problemsOnly) {
    for (const r of results)
      if (r.status === 'refused' || r.status === 'denied')
        out(`problem: ${printable(r.reference)}: ${printable(r.reason ?? r.status, 300)}`);
    return;
  }
  out(`signatures: policy ${printable(opts.policy.source)}, trusted root: ${printable(opts.trust.source)}`);
  const rows = [['IMAGE', 'SIGNATURE', 'SIGNER', 'RULE']];
  for (const r of results) {
    const v = r.verified;
    const signer = v
      ? `${v.signer}${v.issuer ? ` (${v.issuer})` : ''}${v.logIndex !== undefined ? ` log ${v.logIndex}` : ''}`
      : (r.reason ?? '-');
    rows.push([r.reference, r.status, signer, r.rule ?? '-']);
  }
  out(table(rows));
}
