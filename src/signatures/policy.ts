import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import yaml from 'js-yaml';
import { printable } from '../util/text.js';
import { UserInputError } from '../util/user-input.js';
import { publicKeyRule, type SignerRule } from './keys.js';

/**
 * A signature policy in the shape of Talos's `ImageVerificationConfig`, so one
 * file serves the crossing and the nodes: rules in order, the first whose
 * `image` glob matches the image's registry/repository (no tag) decides.
 *
 *   apiVersion: v1alpha1            # optional: a Talos document is taken as it is
 *   kind: ImageVerificationConfig
 *   rules:
 *     - image: ghcr.io/siderolabs/*
 *       keyless: { issuer: https://accounts.google.com, subjectRegex: '.*@siderolabs\.com' }
 *     - image: registry.lan/**
 *       publicKey: { key: site.pub }          # or certificate: <PEM public key>, as Talos takes it
 *     - image: docker.io/**
 *       deny: true
 *     - image: '**'
 *       skip: true
 *
 * Globs as Talos matches them (github.com/ryanuber/go-glob): `*` is any run of
 * characters, slashes included, and nothing else is special, so a rule means
 * the same at the crossing and on the nodes. A subject regular expression must
 * match the whole subject.
 */

export type PolicyRule = { image: string; index: number } & (
  { action: 'verify'; signer: SignerRule } | { action: 'skip' } | { action: 'deny' }
);

export interface Policy {
  source: string;
  rules: PolicyRule[];
}

export class PolicyError extends UserInputError {
  override name = 'PolicyError';
}

const MAX_POLICY_BYTES = 1024 * 1024;
const MAX_RULES = 1000;
const RULE_FIELDS = new Set(['image', 'verify', 'keyless', 'publicKey', 'skip', 'deny']);
const KEYLESS_FIELDS = new Set(['issuer', 'subject', 'subjectRegex', 'rekorURL']);
const KEY_FIELDS = new Set(['key', 'certificate']);
const DOCUMENT_FIELDS = new Set(['apiVersion', 'kind', 'rules']);

/** Reads and checks a policy file; any mistake is one line naming the file and the field (exit 2). */
export function loadPolicy(path: string): Policy {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new PolicyError(
      `cannot read the signature policy ${printable(path)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  if (Buffer.byteLength(text) > MAX_POLICY_BYTES)
    throw new PolicyError(`${printable(path)}: a signature policy of more than ${MAX_POLICY_BYTES} bytes`);
  let doc: unknown;
  try {
    doc = yaml.load(text, { schema: yaml.CORE_SCHEMA });
  } catch (err) {
    throw new PolicyError(
      `${printable(path)} is not YAML: ${printable((err as Error).message.split('\n')[0] ?? '', 200)}`,
    );
  }
  return { source: path, rules: parseRules(doc, path) };
}

function parseRules(doc: unknown, path: string): PolicyRule[] {
  const where = printable(path);
  if (!isObject(doc)) throw new PolicyError(`${where}: expected a document with "rules"`);
  unknownFields(doc, DOCUMENT_FIELDS, where);
  if (doc.kind !== undefined && doc.kind !== 'ImageVerificationConfig')
    throw new PolicyError(`${where}: kind is ${printable(String(doc.kind))}, expected ImageVerificationConfig`);
  if (!Array.isArray(doc.rules) || doc.rules.length === 0)
    throw new PolicyError(`${where}: "rules" must be a list of rules`);
  if (doc.rules.length > MAX_RULES) throw new PolicyError(`${where}: more than ${MAX_RULES} rules`);
  return doc.rules.map((r, i) => parseRule(r, i, path));
}

function parseRule(raw: unknown, index: number, path: string): PolicyRule {
  const where = `${printable(path)}: rules[${index}]`;
  if (!isObject(raw)) throw new PolicyError(`${where} is not a mapping`);
  unknownFields(raw, RULE_FIELDS, where);
  const image = raw.image;
  if (typeof image !== 'string' || image === '' || /[\s\u0000-\u001f]/.test(image))
    throw new PolicyError(`${where}.image must be a glob of registry/repository (e.g. ghcr.io/siderolabs/*)`);
  if (raw.verify !== undefined && typeof raw.verify !== 'boolean')
    throw new PolicyError(`${where}.verify must be true or false`);
  const actions = (['keyless', 'publicKey', 'skip', 'deny'] as const).filter(
    (k) => raw[k] !== undefined && raw[k] !== false,
  );
  if (actions.length !== 1)
    throw new PolicyError(
      `${where} must have exactly one of keyless, publicKey, skip: true, deny: true (it has ${actions.join(', ') || 'none'})`,
    );
  const action = actions[0]!;
  if ((action === 'skip' || action === 'deny') && raw[action] !== true)
    throw new PolicyError(`${where}.${action} must be true`);
  if (action === 'skip' || raw.verify === false) return { image, index, action: 'skip' };
  if (action === 'deny') return { image, index, action: 'deny' };
  const signer =
    action === 'keyless'
      ? keylessRule(raw.keyless, `${where}.keyless`)
      : keyRule(raw.publicKey, `${where}.publicKey`, path);
  return { image, index, action: 'verify', signer };
}

function keylessRule(raw: unknown, where: string): SignerRule {
  if (!isObject(raw)) throw new PolicyError(`${where} must be a mapping with issuer and subject or subjectRegex`);
  unknownFields(raw, KEYLESS_FIELDS, where);
  if (typeof raw.issuer !== 'string' || !/^https?:\/\/\S+$/.test(raw.issuer))
    throw new PolicyError(`${where}.issuer must be the OIDC issuer URL (e.g. https://accounts.google.com)`);
  const subject = optionalString(raw.subject, `${where}.subject`);
  const pattern = optionalString(raw.subjectRegex, `${where}.subjectRegex`);
  if ((subject === undefined) === (pattern === undefined))
    throw new PolicyError(`${where} needs exactly one of subject, subjectRegex`);
  if (pattern === undefined) return { kind: 'keyless', issuer: raw.issuer, subject: subject! };
  try {
    return { kind: 'keyless', issuer: raw.issuer, subjectRegex: new RegExp(`^(?:${pattern})$`, 'u') };
  } catch (err) {
    throw new PolicyError(
      `${where}.subjectRegex is not a valid regular expression: ${printable((err as Error).message)}`,
    );
  }
}

/** `key: FILE` (relative to the policy) or `certificate: PEM`, which Talos reads as a PEM public key. */
function keyRule(raw: unknown, where: string, path: string): SignerRule {
  if (!isObject(raw)) throw new PolicyError(`${where} must be a mapping with key (a file) or certificate (PEM)`);
  unknownFields(raw, KEY_FIELDS, where);
  const file = optionalString(raw.key, `${where}.key`);
  const pem = optionalString(raw.certificate, `${where}.certificate`);
  if ((file === undefined) === (pem === undefined))
    throw new PolicyError(`${where} needs exactly one of key, certificate`);
  let text = pem;
  if (file !== undefined) {
    try {
      text = readFileSync(resolve(dirname(path), file), 'utf8');
    } catch (err) {
      throw new PolicyError(
        `${where}.key: cannot read ${printable(file)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  }
  if (!/-----BEGIN (RSA )?PUBLIC KEY-----/.test(text!))
    throw new PolicyError(`${where}: not a PEM public key (BEGIN PUBLIC KEY); Talos takes no certificate here either`);
  try {
    return publicKeyRule(text!);
  } catch (err) {
    throw new PolicyError(`${where}: the public key cannot be read: ${printable((err as Error).message)}`);
  }
}

/** The rule that decides for `name` (registry/repository), or undefined when none matches. */
export function ruleFor(policy: Policy, name: string): PolicyRule | undefined {
  return policy.rules.find((r) => globMatches(r.image, name));
}

/** `*` any run of characters (slashes included), everything else literal: Talos's matching. */
export function globMatches(glob: string, name: string): boolean {
  const parts = glob.split('*');
  if (parts.length === 1) return glob === name;
  const first = parts[0]!;
  const last = parts[parts.length - 1]!;
  if (!name.startsWith(first) || name.length < first.length + last.length || !name.endsWith(last)) return false;
  // The middle pieces, in order, each after the one before: a greedy left-to-right scan is exact for `*` alone.
  let at = first.length;
  const end = name.length - last.length;
  for (const piece of parts.slice(1, -1)) {
    const found = name.indexOf(piece, at);
    if (found < 0 || found + piece.length > end) return false;
    at = found + piece.length;
  }
  return true;
}

function unknownFields(obj: Record<string, unknown>, known: Set<string>, where: string): void {
  const extra = Object.keys(obj).filter((k) => !known.has(k));
  if (extra.length > 0)
    throw new PolicyError(`${where}: unknown field ${printable(extra[0]!)} (known: ${[...known].join(', ')})`);
}

function optionalString(value: unknown, where: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw new PolicyError(`${where} must be a non-empty string`);
  return value;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
