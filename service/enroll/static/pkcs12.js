// A PKCS#12 file (RFC 7292) made in the browser, in the shape OpenSSL 3 writes by default:
//   PFX { version 3, authSafe (data) = [ encryptedData(certificates), data(shrouded key bag) ], macData }
// Both the key bag and the certificates are encrypted with PBES2 (RFC 8018): PBKDF2-HMAC-SHA256 and AES-256-CBC;
// the MAC is HMAC-SHA256 keyed by the PKCS#12 KDF (RFC 7292 Appendix B; PBMAC1 is too new for NSS and OpenSSL 3.0).
// The MAC uses as many iterations as PBKDF2, so a password guessed against the MAC costs as much as one guessed
// against the key bag (OpenSSL's default of 2048 MAC iterations would make the MAC the cheap way in).

import {
  bmpString, concat, explicit, implicitPrimitive, integer, nullValue, octetString, oid, sequence, set, utf16be,
} from './der.js';

export const ITERATIONS = 600000; // PBKDF2 and MAC alike; as service/ca/pkcs12.py and OWASP today

const OID = {
  data: '1.2.840.113549.1.7.1',
  encryptedData: '1.2.840.113549.1.7.6',
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  hmacWithSHA256: '1.2.840.113549.2.9',
  aes256cbc: '2.16.840.1.101.3.4.1.42',
  sha256: '2.16.840.1.101.3.4.2.1',
  shroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  friendlyName: '1.2.840.113549.1.9.20',
  localKeyId: '1.2.840.113549.1.9.21',
};

const random = (length) => crypto.getRandomValues(new Uint8Array(length));
const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));

// `privateKey`: an extractable WebCrypto key; `certificates`: DER, the leaf first, then its chain.
export async function buildPkcs12({ privateKey, certificates, password, friendlyName, iterations = ITERATIONS }) {
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey('pkcs8', privateKey));
  // friendlyName and localKeyId tie the key to its certificate (the id: the leaf's SHA-256, as good as any).
  const attributes = set(
    sequence(oid(OID.friendlyName), set(bmpString(friendlyName))),
    sequence(oid(OID.localKeyId), set(octetString(await sha256(certificates[0])))),
  );
  const keyBag = sequence(
    oid(OID.shroudedKeyBag), explicit(0, await encryptedPrivateKeyInfo(pkcs8, password, iterations)), attributes,
  );
  const certBags = certificates.map((der, index) => sequence(
    oid(OID.certBag),
    explicit(0, sequence(oid(OID.x509Certificate), explicit(0, octetString(der)))),
    ...(index === 0 ? [attributes] : []),
  ));
  const authSafe = sequence(
    await encryptedContentInfo(sequence(...certBags), password, iterations),
    sequence(oid(OID.data), explicit(0, octetString(sequence(keyBag)))),
  );
  return sequence(
    integer(3),
    sequence(oid(OID.data), explicit(0, octetString(authSafe))),
    await macData(authSafe, password, iterations),
  );
}

// PBES2 { PBKDF2 { salt, iterations, hmacWithSHA256 }, AES-256-CBC { iv } } and the ciphertext. The password goes
// into PBKDF2 as UTF-8, as OpenSSL and NSS do for PBES2 inside PKCS#12.
async function pbes2Encrypt(plaintext, password, iterations) {
  const salt = random(16);
  const iv = random(16);
  const base = await crypto.subtle.importKey('raw', new TextEncoder().encode(password), 'PBKDF2', false, ['deriveKey']);
  const key = await crypto.subtle.deriveKey(
    { name: 'PBKDF2', salt, iterations, hash: 'SHA-256' }, base, { name: 'AES-CBC', length: 256 }, false, ['encrypt'],
  );
  const ciphertext = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-CBC', iv }, key, plaintext)); // PKCS#7 pad
  const algorithm = sequence(
    oid(OID.pbes2),
    sequence(
      sequence(oid(OID.pbkdf2), sequence(octetString(salt), integer(iterations), sequence(oid(OID.hmacWithSHA256), nullValue()))),
      sequence(oid(OID.aes256cbc), octetString(iv)),
    ),
  );
  return { algorithm, ciphertext };
}

// EncryptedPrivateKeyInfo ::= SEQUENCE { encryptionAlgorithm, encryptedData OCTET STRING } (the shrouded key bag).
async function encryptedPrivateKeyInfo(pkcs8, password, iterations) {
  const { algorithm, ciphertext } = await pbes2Encrypt(pkcs8, password, iterations);
  return sequence(algorithm, octetString(ciphertext));
}

// ContentInfo { encryptedData, [0] EncryptedData { version 0, EncryptedContentInfo { data, algorithm, [0] IMPLICIT
// OCTET STRING } } } around the certificates' SafeContents.
async function encryptedContentInfo(safeContents, password, iterations) {
  const { algorithm, ciphertext } = await pbes2Encrypt(safeContents, password, iterations);
  return sequence(
    oid(OID.encryptedData),
    explicit(0, sequence(integer(0), sequence(oid(OID.data), algorithm, implicitPrimitive(0, ciphertext)))),
  );
}

// MacData { DigestInfo { sha256, HMAC over the authSafe's content }, macSalt, iterations }.
async function macData(authSafe, password, iterations) {
  const salt = random(16);
  const raw = await macKey(password, salt, iterations);
  const key = await crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, authSafe));
  return sequence(sequence(sequence(oid(OID.sha256), nullValue()), octetString(mac)), octetString(salt), integer(iterations));
}

// The PKCS#12 KDF (RFC 7292 B.2) for the MAC key (ID 3) with SHA-256: u = 32 = the key's length, v = 64, so the
// first block A_1 = H^r(D || S || P) is the whole key and the B / I_j update never runs. The password is a
// BMPString with its two-octet NUL terminator.
async function macKey(password, salt, iterations) {
  const stretch = (bytes) => Uint8Array.from({ length: 64 * Math.ceil(bytes.length / 64) }, (_, i) => bytes[i % bytes.length]);
  const diversifier = new Uint8Array(64).fill(3);
  const bmpPassword = concat([utf16be(password), Uint8Array.of(0, 0)]);
  const first = await sha256(concat([diversifier, stretch(salt), stretch(bmpPassword)]));
  return sha256Repeat(first, iterations - 1);
}

// SHA-256 (FIPS 180-4) applied `times` more times to a 32-octet digest. WebCrypto has no iterated hash and
// 600,000 awaited digests take far too long, so the loop is here. Every input is a 32-octet message, so each step
// is exactly one block: the digest, the 0x80 marker, zeros, and the length (256 bits).
// K and H0 are computed, not typed: the first 32 bits of the fractional parts of the cube roots (K) and square
// roots (H0) of the first 64 and 8 primes (FIPS 180-4 4.2.2 and 5.3.3). The tests check this loop against
// WebCrypto's SHA-256.
const PRIMES = [];
for (let n = 2; PRIMES.length < 64; n += 1) if (PRIMES.every((p) => n % p)) PRIMES.push(n);
const fraction = (x) => ((x - Math.floor(x)) * 2 ** 32) >>> 0;
const K = Uint32Array.from(PRIMES, (p) => fraction(Math.cbrt(p)));
const H0 = Uint32Array.from(PRIMES.slice(0, 8), (p) => fraction(Math.sqrt(p)));
const rotr = (x, n) => (x >>> n) | (x << (32 - n));

export function sha256Repeat(digest, times) {
  const view = new DataView(digest.buffer, digest.byteOffset, 32);
  const state = Uint32Array.from({ length: 8 }, (_, i) => view.getUint32(4 * i));
  const w = new Uint32Array(64); // stores wrap modulo 2^32
  for (let round = 0; round < times; round += 1) {
    w.set(state);
    w.fill(0, 8, 16);
    w[8] = 0x80000000;
    w[15] = 256;
    for (let i = 16; i < 64; i += 1) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    let a = H0[0], b = H0[1], c = H0[2], d = H0[3], e = H0[4], f = H0[5], g = H0[6], h = H0[7];
    for (let i = 0; i < 64; i += 1) {
      const t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    state[0] = H0[0] + a; state[1] = H0[1] + b; state[2] = H0[2] + c; state[3] = H0[3] + d;
    state[4] = H0[4] + e; state[5] = H0[5] + f; state[6] = H0[6] + g; state[7] = H0[7] + h;
  }
  const out = new Uint8Array(32);
  const outView = new DataView(out.buffer);
  state.forEach((word, i) => outView.setUint32(4 * i, word));
  return out;
}
