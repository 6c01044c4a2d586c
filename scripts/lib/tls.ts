// Certificates for the local test registries, made with the openssl CLI (node:crypto cannot issue X.509).
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { run } from './process.js';

// P-256 keys: generated instantly, and accepted by Go's TLS stack and by the registry's token verifier.
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export interface ServerCertificate {
  caFile: string; // PEM of the CA that signed the server certificate
  certFile: string;
  keyFile: string;
  certDir: string; // folder holding only ca.crt: skopeo treats every *.crt there as a trusted root
}

/** Makes a throw-away CA and a server certificate for 127.0.0.1/localhost inside `dir`. */
export async function makeServerCertificate(dir: string): Promise<ServerCertificate> {
  const certDir = path.join(dir, 'certs.d');
  await mkdir(certDir, { recursive: true });
  const caFile = path.join(certDir, 'ca.crt');
  const caKey = path.join(dir, 'ca.key');
  const certFile = path.join(dir, 'server.crt');
  const keyFile = path.join(dir, 'server.key');
  await run('openssl', [
    'req',
    '-x509',
    ...EC_KEY,
    '-keyout',
    caKey,
    '-out',
    caFile,
    '-days',
    '2',
    '-subj',
    '/CN=airgap-bundle test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  // Go ignores the CN when checking host names: the SAN is what makes 127.0.0.1 valid.
  await run('openssl', [
    'req',
    '-x509',
    ...EC_KEY,
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '2',
    '-subj',
    '/CN=127.0.0.1',
    '-CA',
    caFile,
    '-CAkey',
    caKey,
    '-addext',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-addext',
    'basicConstraints=CA:FALSE',
    '-addext',
    'extendedKeyUsage=serverAuth',
  ]);
  return { caFile, certFile, keyFile, certDir };
}

/** Wraps an existing private key in a self-signed certificate (the registry's token trust anchor). */
export async function selfSignedCertificate(keyFile: string, certFile: string, commonName: string): Promise<void> {
  await run('openssl', [
    'req',
    '-x509',
    '-new',
    '-key',
    keyFile,
    '-out',
    certFile,
    '-days',
    '2',
    '-subj',
    `/CN=${commonName}`,
  ]);
}
