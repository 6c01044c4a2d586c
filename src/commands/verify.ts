import type { ArgumentsCamelCase, Argv } from 'yargs';
import { statSync } from 'node:fs';
import { verifyBundle, type VerifyReport } from '../bundle/verify.js';
import { Reporter } from '../ui/reporter.js';
import { formatBytes, table } from '../ui/format.js';
import { CheckFailed, UsageError } from './errors.js';
import { outputOptions, type OutputArgs } from './output-options.js';

interface VerifyArgs extends OutputArgs {
  bundle: string;
}

export const command = 'verify <bundle>';
export const describe = 'Prove a bundle is complete and intact, offline, in one read';

export function builder(y: Argv) {
  return outputOptions(y)
    .positional('bundle', { type: 'string', demandOption: true, describe: 'Bundle tar written by export' })
    .example('$0 verify talos.tar', 'Check every blob, every image and the .sha256 sidecar')
    .example('$0 verify talos.tar --json | jq .images', 'The same report as data')
    .epilog('Exit codes: 0 intact, 3 damaged or incomplete (the report says which images are still usable), 2 usage error, 1 other failure.');
}

export async function handler(argv: ArgumentsCamelCase<VerifyArgs>): Promise<void> {
  const reporter = new Reporter({ quiet: argv.quiet, json: argv.json, tty: process.stderr.isTTY === true });
  let size: number;
  try {
    size = statSync(argv.bundle).size;
  } catch {
    throw new UsageError(`bundle ${argv.bundle} does not exist`);
  }
  reporter.startBytes('read', `verifying ${argv.bundle}`, size);
  const started = Date.now();
  const report = await verifyBundle(argv.bundle, { onBytes: (n) => reporter.advance('read', n) });
  reporter.stop();
  const seconds = (Date.now() - started) / 1000;
  reporter.result({ ...report, seconds });
  if (!argv.json) printReport(report, seconds);
  if (!report.ok) {
    const broken = report.images.filter((i) => i.status !== 'intact').length;
    throw new CheckFailed(
      report.images.length === 0
        ? `${argv.bundle} is not usable: ${report.problems[0] ?? 'no metadata'}`
        : `${argv.bundle} is damaged: ${broken} of ${report.images.length} images broken${broken < report.images.length ? `; the other ${report.images.length - broken} are intact` : ''}${report.sidecar.status === 'mismatch' ? '; checksum differs from the sidecar' : ''}`,
    );
  }
}

function printReport(r: VerifyReport, seconds: number): void {
  const out = (s: string) => process.stderr.write(`${s}\n`);
  out(`bundle ${r.bundle}: ${formatBytes(r.bytes)}${r.tool ? `, written by ${r.tool.name} ${r.tool.version} (format ${r.formatVersion})` : ''}`);
  const side: Record<VerifyReport['sidecar']['status'], string> = {
    ok: 'matches',
    mismatch: `MISMATCH (sidecar ${r.sidecar.expected}, file ${r.sidecar.actual})`,
    absent: 'absent (not checked)',
    invalid: 'not in sha256sum format',
    unchecked: 'not checked (the bundle could not be read to the end)',
  };
  out(`checksum sidecar: ${side[r.sidecar.status]}`);
  if (r.images.length > 0) {
    const rows = [['IMAGE', 'STATUS', 'PLATFORMS']];
    for (const im of r.images) {
      const plats = im.platforms.map((p) => (p.status === 'intact' ? p.platform : `${p.platform} (${p.status})`)).join(', ');
      rows.push([im.reference, im.status, plats || '-']);
    }
    out(table(rows));
  }
  const details = [...r.problems, ...r.images.flatMap((im) => im.problems.map((p) => `${im.reference}: ${p}`))];
  if (details.length > 0) {
    out('problems:');
    for (const p of details) out(`  - ${p}`);
  }
  out(`${r.blobs.verified} of ${r.blobs.listed} blobs verified, ${r.blobs.damaged} damaged, ${r.blobs.missing} missing, in ${seconds.toFixed(1)}s (${formatBytes(r.bytes / Math.max(seconds, 0.001))}/s)`);
  if (r.ok) out('bundle intact');
}
