// A Sigstore of the tests' own, offline: a Fulcio-like CA that embeds SCTs from a CT log, a
// Rekor-like log that signs entry timestamps (both from @sigstore/mock), and the trusted root that
// names them. It signs payloads keyless the way cosign does and hands back the annotations of a
// cosign signature layer; nothing here verifies anything.
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { initializeCA, initializeCTLog, initializeTLog } from '@sigstore/mock';

export const OID_FULCIO_ISSUER_V1 = '1.3.6.1.4.1.57264.1.1';

export interface MockSigstore {
  /** The trusted root naming this CA, CT log and transparency log. */
  root: Record<string, unknown>;
  /** A keyless signature of `payload` by `subject` (a URI) of `issuer`: cosign's layer annotations. */
  signKeyless(payload: Buffer, subject: string, issuer: string): Promise<Record<string, string>>;
}

const b64 = (b: Buffer | ArrayBuffer) =>
  Buffer.from(b instanceof ArrayBuffer ? new Uint8Array(b) : b).toString('base64');
const ec = (curve: 'P-256' | 'P-384') => generateKeyPairSync('ec', { namedCurve: curve });
const since = { start: '2000-01-01T00:00:00Z' };

/** `caClock` dates the certificates (valid for ten minutes), `logClock` the log's entries. */
export async function mockSigstore(opts: { caClock?: Date; logClock?: Date } = {}): Promise<MockSigstore> {
  const ctKeys = ec('P-256');
  const ct = await initializeCTLog(ctKeys, opts.caClock);
  const ca = await initializeCA(ec('P-384'), ct, opts.caClock);
  const tlogKeys = ec('P-256');
  const tlog = await initializeTLog('https://rekor.test', tlogKeys, opts.logClock);
  const root = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [
      {
        baseUrl: 'https://rekor.test',
        hashAlgorithm: 'SHA2_256',
        publicKey: { rawBytes: b64(tlog.publicKey), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: since },
        logId: { keyId: b64(createHash('sha256').update(tlog.publicKey).digest()) },
      },
    ],
    certificateAuthorities: [
      {
        subject: { organization: 'sigstore.mock', commonName: 'sigstore' },
        uri: 'https://fulcio.test',
        certChain: { certificates: [{ rawBytes: b64(ca.rootCertificate) }] },
        validFor: since,
      },
    ],
    ctlogs: [
      {
        baseUrl: 'https://ctfe.test',
        hashAlgorithm: 'SHA2_256',
        publicKey: { rawBytes: b64(ct.publicKey), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: since },
        logId: { keyId: b64(ct.logID) },
      },
    ],
    timestampAuthorities: [],
  };
  return {
    root,
    async signKeyless(payload, subject, issuer) {
      const signer = ec('P-256');
      const der = await ca.issueCertificate({
        publicKey: signer.publicKey.export({ type: 'spki', format: 'der' }),
        subjectAltName: subject,
        extensions: [{ oid: OID_FULCIO_ISSUER_V1, value: issuer, legacy: true }],
      });
      const pem = `-----BEGIN CERTIFICATE-----\n${b64(der).replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE-----\n`;
      const signature = b64(sign('sha256', payload, signer.privateKey));
      const entries = await tlog.log({
        apiVersion: '0.0.1',
        kind: 'hashedrekord',
        spec: {
          data: { hash: { algorithm: 'sha256', value: createHash('sha256').update(payload).digest('hex') } },
          signature: { content: signature, publicKey: { content: b64(Buffer.from(pem)) } },
        },
      });
      const entry = Object.values(entries)[0] as {
        body: string;
        integratedTime: number;
        logID: string;
        logIndex: number;
        verification: { signedEntryTimestamp: string };
      };
      return {
        'dev.cosignproject.cosign/signature': signature,
        'dev.sigstore.cosign/certificate': pem,
        'dev.sigstore.cosign/bundle': JSON.stringify({
          SignedEntryTimestamp: entry.verification.signedEntryTimestamp,
          Payload: {
            body: entry.body,
            integratedTime: entry.integratedTime,
            logIndex: entry.logIndex,
            logID: entry.logID,
          },
        }),
      };
    },
  };
}

/** Trusted roots put together: every CA and log of each. */
export function mergedRoot(...roots: Array<Record<string, unknown>>): Record<string, unknown> {
  const all = (k: string) => roots.flatMap((r) => r[k] as unknown[]);
  return {
    mediaType: roots[0]!.mediaType,
    tlogs: all('tlogs'),
    certificateAuthorities: all('certificateAuthorities'),
    ctlogs: all('ctlogs'),
    timestampAuthorities: [],
  };
}
