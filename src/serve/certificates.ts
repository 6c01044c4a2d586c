import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';
import type { Pair } from './tls.js';

/**
 * The certificates --tls-generate writes: a private CA, and a server
 * certificate it signs for the names nodes reach the server at. node-forge
 * builds them (Node can read X.509 but not write it); the keys come from
 * Node's own crypto.
 */

const YEAR_MS = 365 * 24 * 3600 * 1000;
const CA_YEARS = 10;
const SERVER_YEARS = 3;

function keyPair(): { pem: string; forgeKey: forge.pki.rsa.PrivateKey; forgePublic: forge.pki.rsa.PublicKey } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return {
    pem: privateKey,
    forgeKey: forge.pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey,
    forgePublic: forge.pki.publicKeyFromPem(publicKey) as forge.pki.rsa.PublicKey,
  };
}

function baseCertificate(publicKey: forge.pki.rsa.PublicKey, years: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // Positive, 16 random bytes: unique without a counter to keep.
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`;
  cert.validity.notBefore = new Date(Date.now() - 3600 * 1000);
  cert.validity.notAfter = new Date(Date.now() + years * YEAR_MS);
  return cert;
}

export function issueCa(): Pair {
  const keys = keyPair();
  const cert = baseCertificate(keys.forgePublic, CA_YEARS);
  const subject = [{ name: 'commonName', value: `airgap-bundle serve CA ${randomBytes(4).toString('hex')}` }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.forgeKey, forge.md.sha256.create());
  return { cert: pemText(cert), key: keys.pem };
}

export function issueServer(ca: Pair, names: string[]): Pair {
  const keys = keyPair();
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const cert = baseCertificate(keys.forgePublic, SERVER_YEARS);
  cert.setSubject([{ name: 'commonName', value: names[0]! }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    { name: 'subjectAltName', altNames: names.map((n) => (isIP(n) ? { type: 7, ip: n } : { type: 2, value: n })) },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(ca.key) as forge.pki.rsa.PrivateKey, forge.md.sha256.create());
  return { cert: pemText(cert), key: keys.pem };
}

/** PEM with plain line ends (node-forge writes CRLF), as every other PEM file on a Linux machine. */
function pemText(cert: forge.pki.Certificate): string {
  return forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n');
}
