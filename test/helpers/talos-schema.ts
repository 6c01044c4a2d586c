// A small walker over a Talos machine-config JSON schema (test/fixtures/talos-schemas): every key of
// a config document must be a property the schema lists for its place, every value of the type it
// gives, every required field present. Only the keywords those schemas use are read: $ref, properties,
// patternProperties, additionalProperties, required, type, items, enum, pattern.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SchemaNode {
  $ref?: string;
  properties?: Record<string, SchemaNode>;
  patternProperties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  required?: string[];
  type?: string;
  items?: SchemaNode;
  enum?: unknown[];
  pattern?: string;
}

export interface TalosSchema {
  $defs: Record<string, SchemaNode>;
  oneOf: Array<{ $ref: string }>;
}

const FIXTURES = join(import.meta.dirname, '../fixtures/talos-schemas');

export function loadTalosSchema(version: string): TalosSchema {
  return JSON.parse(readFileSync(join(FIXTURES, `${version}.schema.json`), 'utf8')) as TalosSchema;
}

const defName = (ref: string) => ref.replace('#/$defs/', '');

/** The definition a document is checked against: its kind among the root's documents, or v1alpha1.Config. */
export function documentDefinition(schema: TalosSchema, doc: Record<string, unknown>): string | undefined {
  if (doc.kind === undefined) return 'v1alpha1.Config';
  return schema.oneOf
    .map((r) => defName(r.$ref))
    .find((name) => schema.$defs[name]?.properties?.kind?.enum?.includes(doc.kind));
}

/** Every way `doc` breaks the schema, one line each; empty when it fits. */
export function schemaErrors(schema: TalosSchema, doc: Record<string, unknown>): string[] {
  const name = documentDefinition(schema, doc);
  if (!name) return [`kind ${String(doc.kind)} is not a document of this schema`];
  const errors: string[] = [];
  walk(schema, doc, { $ref: `#/$defs/${name}` }, String(doc.kind ?? 'v1alpha1'), errors);
  return errors;
}

function resolve(schema: TalosSchema, node: SchemaNode, path: string, errors: string[]): SchemaNode | undefined {
  if (!node.$ref) return node;
  const target = schema.$defs[defName(node.$ref)];
  if (!target) errors.push(`${path}: ${defName(node.$ref)} is not in the schema excerpt`);
  return target;
}

function walk(schema: TalosSchema, value: unknown, node: SchemaNode, path: string, errors: string[]): void {
  const s = resolve(schema, node, path, errors);
  if (!s) return;
  if (s.enum && !s.enum.includes(value))
    errors.push(`${path}: ${JSON.stringify(value)} is not one of ${s.enum.join(', ')}`);
  if (s.properties || s.patternProperties || s.type === 'object') return walkObject(schema, value, s, path, errors);
  if (s.type === 'array') {
    if (!Array.isArray(value)) return void errors.push(`${path}: not a list`);
    value.forEach((v, i) => s.items && walk(schema, v, s.items, `${path}[${i}]`, errors));
    return;
  }
  if (s.type === 'string') {
    if (typeof value !== 'string') return void errors.push(`${path}: not a string`);
    if (s.pattern && !new RegExp(s.pattern).test(value)) errors.push(`${path}: "${value}" does not match ${s.pattern}`);
  }
  if (s.type === 'boolean' && typeof value !== 'boolean') errors.push(`${path}: not a boolean`);
  if (s.type === 'integer' && !Number.isInteger(value)) errors.push(`${path}: not an integer`);
}

function walkObject(schema: TalosSchema, value: unknown, s: SchemaNode, path: string, errors: string[]): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return void errors.push(`${path}: not a mapping`);
  const record = value as Record<string, unknown>;
  for (const key of s.required ?? []) if (!(key in record)) errors.push(`${path}: required ${key} missing`);
  for (const [key, v] of Object.entries(record)) {
    const child =
      s.properties?.[key] ??
      Object.entries(s.patternProperties ?? {}).find(([pattern]) => new RegExp(pattern).test(key))?.[1];
    if (child) walk(schema, v, child, `${path}.${key}`, errors);
    else if (s.properties || s.patternProperties || s.additionalProperties === false)
      errors.push(`${path}.${key}: not a field the schema has here`);
  }
}
