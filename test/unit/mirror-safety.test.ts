// Hostile names against the mirror-config writers and the tool's output: a bundle's metadata is
// attacker-controlled, so every generator is checked here on its own, without the metadata parser
// in front of it (the writers must hold even if a name got through).
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { containerdHosts, namespaceOf, tomlString } from '../../src/mirror/containerd.js';
import { k3sRegistries } from '../../src/mirror/k3s.js';
import { containedPath, makeContainedFolder, OutputLinkError, OutputPathError } from '../../src/mirror/output-files.js';
import { writeFileAtomic } from '../../src/util/atomic-file.js';
import {
  checkMirrorOptions,
  MirrorConfigError,
  planMirrors,
  type MirrorOptions,
  type MirrorPlan,
} from '../../src/mirror/plan.js';
import { talosMultiDoc, talosPatch } from '../../src/mirror/talos.js';
import { isRegistryHost } from '../../src/reference/mapping.js';
import { table } from '../../src/ui/format.js';
import { jsonText } from '../../src/ui/output.js';
import { terminalSafe } from '../../src/util/text.js';
import { DEFAULT_PRINTABLE_MAX } from '../../src/util/text.js';

const base: MirrorOptions = {
  endpoint: 'http://10.5.0.1:6000',
  registries: [],
  keepRegistryHost: true,
  skipFallback: true,
  insecureSkipVerify: false,
};

/** Names a forged bundle could carry as an image's registry. */
const HOSTILE_NAMES = [
  '../../escape',
  '..',
  '/etc',
  'a/b',
  'docker.io\n[host."http://evil"]',
  'docker.io"]\n[host."http://evil',
  'ghcr.io\r\nserver = "http://evil"',
  'x\u001b]0;pwned\u0007',
  '\u001b[2J',
  '\u009b31m',
  'a\u2028b',
  '__proto__',
  '*',
  '_default',
  ' ghcr.io',
  `${'a'.repeat(300)}.io`,
  '',
];

/** Every raw character a terminal or a config parser could act on, line breaks aside. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/;

/**
 * A plan as planMirrors would build it, but without its checks: the generators
 * are tested against names that should never reach them.
 */
function unvalidatedPlan(
  registries: string[],
  opts: Partial<MirrorOptions> = {},
  endpointHost = '10.5.0.1:6000',
): MirrorPlan {
  const o = { ...base, registries, ...opts };
  const endpoint = o.endpoint.replace(/\/+$/, '');
  return {
    entries: registries.map((registry) => ({
      registry,
      url: `${endpoint}/v2/${registry.replace(/:/g, '_')}`,
      overridePath: true,
    })),
    endpointHost,
    options: o,
  };
}

// ---- a TOML reader for exactly what hosts.toml may hold, written from the TOML 1.0 spec ----

/** Decodes one TOML basic string starting at `text[0] === '"'`; returns the value and the rest. */
function readBasicString(text: string): { value: string; rest: string } {
  if (text[0] !== '"') throw new Error(`not a basic string: ${JSON.stringify(text)}`);
  let value = '';
  for (let i = 1; i < text.length; i++) {
    const c = text[i]!;
    const code = c.charCodeAt(0);
    if (c === '"') return { value, rest: text.slice(i + 1) };
    if ((code <= 0x1f && c !== '\t') || code === 0x7f)
      throw new Error(`raw control character U+${code.toString(16)} in a basic string`);
    if (c !== '\\') {
      value += c;
      continue;
    }
    const e = text[++i];
    const simple: Record<string, string> = { b: '\b', t: '\t', n: '\n', f: '\f', r: '\r', '"': '"', '\\': '\\' };
    if (e !== undefined && simple[e] !== undefined) value += simple[e];
    else if (e === 'u' || e === 'U') {
      const n = e === 'u' ? 4 : 8;
      const hex = text.slice(i + 1, i + 1 + n);
      if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== n) throw new Error(`bad \\${e} escape`);
      const cp = parseInt(hex, 16);
      if (cp >= 0xd800 && cp <= 0xdfff) throw new Error('escape names a surrogate, not a Unicode scalar value');
      value += String.fromCodePoint(cp);
      i += n;
    } else throw new Error(`invalid escape \\${String(e)}`);
  }
  throw new Error('unterminated basic string');
}

interface TomlDoc {
  /** Table headers in order: `host."URL"` gives ['host', 'URL']. */
  tables: string[][];
  /** `table path → key → raw value text`, root table under ''. */
  keys: Array<{ table: string; key: string; value: string | boolean | string[] }>;
}

/**
 * Reads hosts.toml line by line: blank lines, comments, `[host."…"]` headers and
 * `key = value` pairs with a basic string, a boolean or an array of basic
 * strings. Anything else throws: a hostile name must not turn into a line this
 * reader does not expect.
 */
function readHostsToml(text: string): TomlDoc {
  const doc: TomlDoc = { tables: [], keys: [] };
  let table = '';
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    if (t.startsWith('[')) {
      const m = /^\[host\.(.*)\]$/.exec(t);
      if (!m) throw new Error(`unexpected table line: ${JSON.stringify(line)}`);
      const { value, rest } = readBasicString(m[1]!);
      if (rest !== '') throw new Error(`trailing text after table key: ${JSON.stringify(line)}`);
      doc.tables.push(['host', value]);
      table = `host.${value}`;
      continue;
    }
    const kv = /^([a-z_]+) = (.*)$/.exec(t);
    if (!kv) throw new Error(`unexpected line: ${JSON.stringify(line)}`);
    const raw = kv[2]!;
    let value: string | boolean | string[];
    if (raw === 'true' || raw === 'false') value = raw === 'true';
    else if (raw.startsWith('"')) {
      const s = readBasicString(raw);
      if (s.rest !== '') throw new Error(`trailing text after value: ${JSON.stringify(line)}`);
      value = s.value;
    } else if (raw.startsWith('[')) {
      value = [];
      let rest = raw.slice(1);
      while (!rest.startsWith(']')) {
        const s = readBasicString(rest.trimStart());
        value.push(s.value);
        rest = s.rest.replace(/^\s*,\s*/, '');
      }
      if (rest !== ']') throw new Error(`trailing text after array: ${JSON.stringify(line)}`);
    } else throw new Error(`unexpected value: ${JSON.stringify(line)}`);
    doc.keys.push({ table, key: kv[1]!, value });
  }
  return doc;
}

describe('TOML basic strings', () => {
  it('read back exactly, for every code point up to U+00FF and the separators', () => {
    const all = Array.from({ length: 0x100 }, (_, i) => String.fromCharCode(i)).join('') + '\u2028\u2029 é ✓ 😀';
    for (const s of [all, ...Array.from(all), 'http://r.lan"]\n[host."http://evil"]', 'C:\\path\\"x"']) {
      const quoted = tomlString(s);
      expect(readBasicString(quoted)).toEqual({ value: s, rest: '' });
      expect(quoted.slice(1, -1)).not.toMatch(RAW_CONTROL);
      expect(quoted).not.toContain('\n');
    }
  });

  it('escape control characters as \\uXXXX, and quote and backslash', () => {
    expect(tomlString('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(tomlString('\u0000\u001f\u007f\n\u001b')).toBe('"\\u0000\\u001F\\u007F\\u000A\\u001B"');
  });

  it('turn a lone surrogate, which no escape can name, into U+FFFD', () => {
    expect(readBasicString(tomlString('a\ud800b')).value).toBe('a\ufffdb');
    expect(readBasicString(tomlString('😀')).value).toBe('😀');
  });
});

describe('registry names from a bundle', () => {
  it('are hosts by the reference grammar, nothing else', () => {
    for (const ok of [
      'ghcr.io',
      'docker.io',
      'registry.k8s.io',
      '127.0.0.1:5000',
      '[::1]:5000',
      'localhost',
      'localhost:5000',
    ])
      expect(isRegistryHost(ok), ok).toBe(true);
    for (const bad of HOSTILE_NAMES) expect(isRegistryHost(bad), JSON.stringify(bad)).toBe(false);
  });

  it('are refused by planMirrors before any file is generated, with the name escaped', () => {
    for (const bad of HOSTILE_NAMES) {
      let thrown: unknown;
      try {
        planMirrors({ ...base, registries: ['ghcr.io', bad] });
      } catch (err) {
        thrown = err;
      }
      expect(thrown, JSON.stringify(bad)).toBeInstanceOf(MirrorConfigError);
      const message = (thrown as Error).message;
      expect(message).not.toMatch(RAW_CONTROL);
      expect(message).not.toContain('\n');
    }
  });

  it('cannot name a containerd folder, even when they bypass planMirrors', () => {
    expect(namespaceOf('*')).toBe('_default');
    expect(namespaceOf('127.0.0.1:5000')).toBe('127.0.0.1:5000');
    for (const bad of HOSTILE_NAMES.filter((n) => n !== '*')) {
      expect(() => namespaceOf(bad), JSON.stringify(bad)).toThrow(MirrorConfigError);
      expect(() => containerdHosts(unvalidatedPlan([bad])), JSON.stringify(bad)).toThrow(MirrorConfigError);
    }
  });
});

describe('containerd hosts.toml', () => {
  /** Endpoints a caller could pass around checkMirrorOptions: every one must stay one TOML value. */
  const HOSTILE_ENDPOINTS = [
    'http://r.lan"]\n[host."http://evil"]\n  capabilities = ["pull"',
    'http://r.lan\\"\nserver = "http://evil"',
    'http://r.lan/\u001b[2J\u009b',
  ];

  it('holds exactly the expected tables and keys, whatever the endpoint holds', () => {
    for (const endpoint of HOSTILE_ENDPOINTS) {
      for (const skipFallback of [true, false]) {
        // The endpoint host is named in the comment line: it must stay a comment.
        const plan = unvalidatedPlan(
          ['ghcr.io', '127.0.0.1:5001'],
          { endpoint, skipFallback, insecureSkipVerify: true },
          endpoint.slice('http://'.length),
        );
        for (const h of containerdHosts(plan)) {
          const text = h.files['hosts.toml']!;
          expect(text).not.toMatch(RAW_CONTROL);
          const doc = readHostsToml(text);
          const entry = plan.entries.find((e) => e.registry === h.namespace)!;
          if (skipFallback) {
            // The mirror is a [host] table (containerd 1.6 refuses a file without one) and the fallback server.
            expect(doc.tables).toEqual([['host', entry.url]]);
            expect(doc.keys).toEqual([
              { table: '', key: 'server', value: entry.url },
              { table: '', key: 'capabilities', value: ['pull', 'resolve'] },
              { table: '', key: 'skip_verify', value: true },
              { table: '', key: 'override_path', value: true },
              { table: `host.${entry.url}`, key: 'capabilities', value: ['pull', 'resolve'] },
              { table: `host.${entry.url}`, key: 'skip_verify', value: true },
              { table: `host.${entry.url}`, key: 'override_path', value: true },
            ]);
          } else {
            expect(doc.tables).toEqual([['host', entry.url]]);
            expect(doc.keys).toEqual([
              { table: '', key: 'server', value: `https://${h.namespace}` },
              { table: `host.${entry.url}`, key: 'capabilities', value: ['pull', 'resolve'] },
              { table: `host.${entry.url}`, key: 'skip_verify', value: true },
              { table: `host.${entry.url}`, key: 'override_path', value: true },
            ]);
          }
        }
      }
    }
  });

  it("keeps the '*' mirror in _default as a [host] table, with itself as the fallback server", () => {
    const [h] = containerdHosts(planMirrors({ ...base, keepRegistryHost: false }));
    expect(h!.namespace).toBe('_default');
    const doc = readHostsToml(h!.files['hosts.toml']!);
    expect(doc.tables).toEqual([['host', 'http://10.5.0.1:6000']]);
    expect(doc.keys).toEqual([
      { table: '', key: 'server', value: 'http://10.5.0.1:6000' },
      { table: '', key: 'capabilities', value: ['pull', 'resolve'] },
      { table: 'host.http://10.5.0.1:6000', key: 'capabilities', value: ['pull', 'resolve'] },
    ]);
  });
});

describe('YAML output', () => {
  /** Strings that mean something in YAML or to a terminal: each must come back as itself. */
  const NASTY = [
    'a: b\n- c',
    "it's",
    'say "x"',
    '#comment',
    '&anchor',
    '*alias',
    '!!js/function',
    '---',
    '...',
    '\u001b]0;pwned\u0007',
    '\u009b2J',
    'x\u2028y',
    '{a: 1}',
    '[1, 2]',
    'yes',
    'null',
    '~',
    '  lead',
  ];

  it('k3s and both Talos styles load back to exactly the names, URLs and credentials put in', () => {
    const registries = ['__proto__', ...NASTY];
    for (const secret of NASTY) {
      const plan = unvalidatedPlan(registries, {
        endpoint: `https://r.lan:5000/${secret}`,
        auth: { username: secret, password: `${secret}\n---\nkind: Evil` },
        caPem: `-----BEGIN CERTIFICATE-----\n${secret}\n---\n-----END CERTIFICATE-----\n`,
        repoPrefix: secret,
      });

      const patch = yaml.load(talosPatch(plan)) as {
        machine: {
          registries: {
            mirrors: Record<string, { endpoints: string[] }>;
            config: Record<string, { auth: Record<string, string>; tls: Record<string, string> }>;
          };
        };
      };
      const { mirrors, config } = patch.machine.registries;
      expect(Object.keys(mirrors)).toEqual(registries);
      for (const e of plan.entries)
        expect(Object.getOwnPropertyDescriptor(mirrors, e.registry)!.value.endpoints).toEqual([e.url]);
      expect(Object.keys(config)).toEqual(['10.5.0.1:6000']);
      expect(config['10.5.0.1:6000']!.auth).toEqual({ username: secret, password: `${secret}\n---\nkind: Evil` });
      expect(Buffer.from(config['10.5.0.1:6000']!.tls.ca!, 'base64').toString()).toBe(plan.options.caPem);

      const docs = yaml.loadAll(talosMultiDoc(plan)) as Array<Record<string, unknown>>;
      expect(docs.map((d) => d.kind)).toEqual([
        ...registries.map(() => 'RegistryMirrorConfig'),
        'RegistryAuthConfig',
        'RegistryTLSConfig',
      ]);
      expect(docs.slice(0, registries.length).map((d) => d.name)).toEqual(registries);
      expect(docs.slice(0, registries.length).map((d) => (d.endpoints as Array<{ url: string }>)[0]!.url)).toEqual(
        plan.entries.map((e) => e.url),
      );
      expect(docs[registries.length]).toMatchObject({ username: secret, password: `${secret}\n---\nkind: Evil` });
      expect(docs[registries.length + 1]!.ca).toBe(plan.options.caPem);

      const k3s = yaml.load(k3sRegistries(plan)) as {
        mirrors: Record<string, { endpoint: string[]; rewrite: Record<string, string> }>;
        configs: Record<string, { auth: Record<string, string> }>;
      };
      expect(Object.keys(k3s.mirrors)).toEqual(registries);
      for (const r of registries) {
        const m = Object.getOwnPropertyDescriptor(k3s.mirrors, r)!.value as {
          endpoint: string[];
          rewrite: Record<string, string>;
        };
        expect(m.endpoint).toEqual([`https://r.lan:5000/${secret}`]);
        expect(m.rewrite).toEqual({ '^(.*)$': `${secret.replace(/^\/+|\/+$/g, '')}/${r.replace(/:/g, '_')}/$1` });
      }
      expect(k3s.configs['10.5.0.1:6000']!.auth).toEqual({ username: secret, password: `${secret}\n---\nkind: Evil` });

      for (const text of [talosPatch(plan), talosMultiDoc(plan), k3sRegistries(plan)])
        expect(text).not.toMatch(RAW_CONTROL);
    }
  });
});

describe('mirror option checks', () => {
  it('refuse an endpoint with line breaks or controls, and a repo-prefix outside the grammar', () => {
    expect(checkMirrorOptions({ ...base, endpoint: 'http://r.lan\n[host."http://evil"]' }, []).errors.join()).toMatch(
      /whitespace or control/,
    );
    expect(checkMirrorOptions({ ...base, endpoint: 'http://r.lan\t' }, []).errors.join()).toMatch(
      /whitespace or control/,
    );
    expect(checkMirrorOptions({ ...base, repoPrefix: 'air\ngap' }, []).errors.join()).toMatch(/--repo-prefix/);
    expect(checkMirrorOptions({ ...base, repoPrefix: '../x' }, []).errors.join()).toMatch(/--repo-prefix/);
    expect(checkMirrorOptions({ ...base, repoPrefix: 'a:b' }, []).errors.join()).toMatch(/--repo-prefix/);
    expect(checkMirrorOptions({ ...base, repoPrefix: '/airgap/team-1/' }, []).errors).toEqual([]);
  });

  it('quote clashing repositories escaped, one line', () => {
    const repos = [
      { registry: 'docker.io', repository: 'x\u001b[2J\nforged line' },
      { registry: 'ghcr.io', repository: 'x\u001b[2J\nforged line' },
    ];
    const [error] = checkMirrorOptions({ ...base, keepRegistryHost: false }, repos).errors;
    expect(error).toContain('x\\x1b[2J\\nforged line');
    expect(error).not.toMatch(RAW_CONTROL);
    expect(error).not.toContain('\n');
  });
});

describe('output paths', () => {
  let root: string;
  let outside: string;
  beforeEach(async () => {
    outside = await mkdtemp(join(tmpdir(), 'airgap-safety-'));
    root = join(outside, 'out', 'certs.d');
    await mkdir(root, { recursive: true });
  });
  afterEach(async () => {
    await rm(outside, { recursive: true, force: true });
  });

  it('stay under the output folder, or are refused', () => {
    expect(containedPath(root, 'ghcr.io', 'hosts.toml')).toBe(join(root, 'ghcr.io', 'hosts.toml'));
    expect(containedPath('/', 'x')).toBe('/x');
    for (const parts of [['../../escape'], ['..'], ['/etc', 'hosts.toml'], ['a', '..', '..', 'b'], [''], ['.']]) {
      expect(() => containedPath(root, ...parts), JSON.stringify(parts)).toThrow(OutputPathError);
    }
  });

  it('do not follow a link out of the output folder', async () => {
    await symlink(outside, join(root, 'ghcr.io'));
    await expect(makeContainedFolder(root, join(root, 'ghcr.io'))).rejects.toThrow(OutputLinkError);
    await makeContainedFolder(root, join(root, 'quay.io'));
    expect((await lstat(join(root, 'quay.io'))).isDirectory()).toBe(true);
  });

  it('are written whole or not at all, with no temporary left', async () => {
    const file = join(root, 'hosts.toml');
    await writeFileAtomic(file, 'old\n', 0o644);
    await writeFileAtomic(file, 'server = "x"\n', 0o600);
    expect(await readFile(file, 'utf8')).toBe('server = "x"\n');
    expect((await lstat(file)).mode & 0o777).toBe(0o600);
    await expect(writeFileAtomic(join(root, 'missing', 'hosts.toml'), 'x', 0o644)).rejects.toThrow();
    expect(await readdir(root)).toEqual(['hosts.toml']);
  });
});

describe('terminal output', () => {
  it('table cells are escaped and cut, so one huge cell neither reaches the terminal nor widens every row', () => {
    const rows = [['IMAGE', 'STATUS']];
    for (let i = 0; i < 5000; i++) rows.push([`registry.example/app${i}:v1`, 'intact']);
    rows.push([`evil\u001b]0;pwned\u0007\u001b[2J\u009b${'x'.repeat(8 * 1024 * 1024)}`, 'intact\nbundle intact']);
    const text = table(rows);
    expect(text).not.toMatch(RAW_CONTROL);
    const lines = text.split('\n');
    expect(lines).toHaveLength(rows.length);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(2 * DEFAULT_PRINTABLE_MAX + 10);
    expect(lines.at(-1)).toContain('evil\\x1b]0;pwned\\x07\\x1b[2J\\x9b');
    expect(lines.at(-1)).toContain('intact\\nbundle intact');
  });

  it('terminalSafe keeps line breaks and escapes every other control', () => {
    expect(terminalSafe('a\u001b[2Jb\nc\rd\u009be\u2028')).toBe('a\\x1b[2Jb\nc\\rd\\x9be\\u2028');
  });

  it('JSON output escapes C1 controls, DEL and U+2028/2029, and parses back to the same value', () => {
    const value = {
      reference: 'a\u009b2J\u0085b\u2028c\u2029d\u007fe\u001b]0;x\u0007',
      list: ['\u0080', '\u009f'],
      plain: 'é✓',
    };
    const text = jsonText(value);
    expect(text).not.toMatch(/[\u007f-\u009f\u2028\u2029]/);
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f]/);
    expect(text).toContain('\\u009b');
    expect(text).toContain('\\u2028');
    expect(JSON.parse(text)).toEqual(value);
  });
});
