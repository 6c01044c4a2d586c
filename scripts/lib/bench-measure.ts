/**
 * Measuring one command for the benchmark, and checking a registry's answer: a fast wrong answer
 * is not a result, so every import is followed by a digest comparison.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, readdir, lstat, rm } from 'node:fs/promises';
import http from 'node:http';
import { join } from 'node:path';
import { MediaTypes, type SampleImage } from './samples.js';

export interface Sample {
  seconds: number; // wall clock
  cpuSeconds: number; // user + system CPU (GNU time %U + %S): less sensitive than wall time to other load
  rssMiB: number; // peak resident set (GNU time %M)
  writtenBytes: number; // bytes the process sent to the filesystem (GNU time %O, from the kernel's I/O accounting)
  tmpPeakBytes: number; // largest size its private TMPDIR reached
}

/** Bytes of the regular files under `dir` (0 when it does not exist). */
export async function dirBytes(dir: string): Promise<number> {
  let total = 0;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    try {
      const st = await lstat(join(dir, name));
      total += st.isDirectory() ? await dirBytes(join(dir, name)) : st.size;
    } catch {
      // Removed while we looked: the tool cleans up behind itself.
    }
  }
  return total;
}

/**
 * Runs `cmd` under GNU time with an empty private TMPDIR (skopeo and Node both honour it) that
 * is watched every 100 ms, so temporary copies show up even when they are deleted before exit.
 * Throws with the command's stderr when it fails.
 */
export async function measure(cmd: string[], tmpDir: string, cwd?: string): Promise<Sample> {
  await rm(tmpDir, { recursive: true, force: true });
  await mkdir(tmpDir, { recursive: true });
  const timeFile = `${tmpDir}.time`;
  let tmpPeakBytes = 0;
  let polling = false;
  const poll = setInterval(() => {
    if (polling) return;
    polling = true;
    void dirBytes(tmpDir).then((n) => {
      tmpPeakBytes = Math.max(tmpPeakBytes, n);
      polling = false;
    });
  }, 100);
  const started = process.hrtime.bigint();
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', '%U %S %M %O', '-o', timeFile, ...cmd], {
      env: { ...process.env, TMPDIR: tmpDir },
      cwd,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err = (err + c).slice(-4000)));
    child.on('error', reject);
    child.on('close', (c) => resolve({ code: c, stderr: err }));
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  clearInterval(poll);
  tmpPeakBytes = Math.max(tmpPeakBytes, await dirBytes(tmpDir));
  if (code !== 0) throw new Error(`${cmd.join(' ')} exited with ${code}:\n${stderr}`);
  // GNU time prints "Command exited with non-zero status" first on failure; the numbers are last.
  const [user, sys, kib, blocks] = (await readFile(timeFile, 'utf8')).trim().split('\n').pop()!.split(' ').map(Number);
  await rm(tmpDir, { recursive: true, force: true });
  await rm(timeFile, { force: true });
  return { seconds, cpuSeconds: user! + sys!, rssMiB: kib! / 1024, writtenBytes: blocks! * 512, tmpPeakBytes };
}

/** A sequence of commands counted as one operation: times and bytes add up, memory is the largest. */
export function total(samples: Sample[]): Sample {
  return {
    seconds: samples.reduce((s, x) => s + x.seconds, 0),
    cpuSeconds: samples.reduce((s, x) => s + x.cpuSeconds, 0),
    rssMiB: Math.max(...samples.map((x) => x.rssMiB)),
    writtenBytes: samples.reduce((s, x) => s + x.writtenBytes, 0),
    tmpPeakBytes: Math.max(...samples.map((x) => x.tmpPeakBytes)),
  };
}

// All four, or Distribution down-converts Docker lists to schema1 and hides OCI indexes.
const ACCEPT = [MediaTypes.ociIndex, MediaTypes.ociManifest, MediaTypes.dockerList, MediaTypes.dockerManifest].join(
  ', ',
);

function headDigest(host: string, repository: string, tag: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        method: 'HEAD',
        host: host.split(':')[0],
        port: Number(host.split(':')[1]),
        path: `/v2/${repository}/manifests/${tag}`,
        headers: { Accept: ACCEPT },
      },
      (res) => {
        res.resume();
        const digest = res.headers['docker-content-digest'];
        resolve(res.statusCode === 200 && typeof digest === 'string' ? digest : undefined);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/**
 * Aborts loudly unless `host` serves every image's tag with the digest it has upstream.
 * Distribution accepts a manifest only once its blobs (and an index's children) are in the
 * repository, so a matching top-level digest means the whole image is there.
 */
export async function expectDigests(host: string, images: SampleImage[], what: string): Promise<void> {
  const wrong: string[] = [];
  for (const img of images) {
    const got = await headDigest(host, img.repository, img.tag);
    if (got !== img.digest)
      wrong.push(`  ${img.repository}:${img.tag}: expected ${img.digest}, got ${got ?? 'nothing'}`);
  }
  if (wrong.length > 0) throw new Error(`DIGEST MISMATCH after ${what} (${host}):\n${wrong.join('\n')}`);
}
