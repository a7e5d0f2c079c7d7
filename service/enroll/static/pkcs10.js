// The key and the certificate request (PKCS#10, RFC 2986), made with WebCrypto in this browser.
// The key is extractable because it must go into the PKCS#12 file; it is never sent anywhere.

import { bitString, explicit, integer, nullValue, oid, sequence, set, toPem, utf8String } from './der.js';

export const KEY_TYPES = {
  p256: {
    generate: { name: 'ECDSA', namedCurve: 'P-256' },
    sign: { name: 'ECDSA', hash: 'SHA-256' },
    signatureAlgorithm: () => sequence(oid('1.2.840.10045.4.3.2')), // ecdsa-with-SHA256, no parameters
  },
  rsa2048: {
    generate: {
      name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: Uint8Array.of(1, 0, 1), hash: 'SHA-256',
    },
    sign: { name: 'RSASSA-PKCS1-v1_5' },
    signatureAlgorithm: () => sequence(oid('1.2.840.113549.1.1.11'), nullValue()), // sha256WithRSAEncryption
  },
};

export function generateKey(keyType) {
  const kind = KEY_TYPES[keyType];
  if (!kind) throw new Error(`unknown key type ${keyType}`);
  return crypto.subtle.generateKey(kind.generate, true, ['sign', 'verify']);
}

// The SubjectPublicKeyInfo, DER, exactly as it will appear inside the certificate.
export async function publicKeyInfo(keyPair) {
  return new Uint8Array(await crypto.subtle.exportKey('spki', keyPair.publicKey));
}

// CertificationRequest ::= SEQUENCE { certificationRequestInfo, signatureAlgorithm, signature BIT STRING }.
// The subject is the CN alone (the service takes names from the invitation anyway); no attributes.
export async function buildCsr(keyPair, keyType, commonName) {
  const kind = KEY_TYPES[keyType];
  const subject = commonName
    ? sequence(set(sequence(oid('2.5.4.3'), utf8String(commonName))))
    : sequence();
  const info = sequence(integer(0), subject, await publicKeyInfo(keyPair), explicit(0));
  let signature = new Uint8Array(await crypto.subtle.sign(kind.sign, keyPair.privateKey, info));
  if (kind.generate.name === 'ECDSA') {
    // WebCrypto gives r||s (32 octets each for P-256); X.509 wants Ecdsa-Sig-Value ::= SEQUENCE { r, s }.
    signature = sequence(integer(signature.subarray(0, 32)), integer(signature.subarray(32)));
  }
  return sequence(info, kind.signatureAlgorithm(), bitString(signature));
}

export const csrPem = (der) => toPem('CERTIFICATE REQUEST', der);
