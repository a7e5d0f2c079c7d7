// A small DER writer (ITU-T X.690): only the types a PKCS#10 request and a PKCS#12 file need.
// Every builder returns a Uint8Array holding one complete tag-length-value; nothing here parses DER.

const utf8 = new TextEncoder();

export function concat(parts) {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

// One TLV: the tag byte, the definite length (short form below 128, else 0x80|count and big-endian bytes).
export function tlv(tag, content) {
  const length = [];
  if (content.length < 0x80) {
    length.push(content.length);
  } else {
    for (let n = content.length; n > 0; n = Math.floor(n / 256)) length.unshift(n & 0xff);
    length.unshift(0x80 | length.length);
  }
  return concat([Uint8Array.of(tag, ...length), content]);
}

export const sequence = (...items) => tlv(0x30, concat(items));

// SET OF: DER wants the elements sorted by their encodings (X.690 11.6).
export const set = (...items) => tlv(0x31, concat([...items].sort(compareBytes)));

// [n] EXPLICIT, or [n] IMPLICIT over a constructed type (the same bytes).
export const explicit = (number, ...items) => tlv(0xa0 | number, concat(items));

// [n] IMPLICIT over a primitive type such as OCTET STRING.
export const implicitPrimitive = (number, content) => tlv(0x80 | number, content);

export const nullValue = () => Uint8Array.of(0x05, 0x00);
export const octetString = (bytes) => tlv(0x04, bytes);
export const bitString = (bytes) => tlv(0x03, concat([Uint8Array.of(0), bytes])); // no unused bits
export const utf8String = (text) => tlv(0x0c, utf8.encode(text));
export const bmpString = (text) => tlv(0x1e, utf16be(text));

// A non-negative INTEGER from a JavaScript number or from big-endian unsigned bytes (as WebCrypto gives r and s).
export function integer(value) {
  let bytes;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`not a small non-negative integer: ${value}`);
    bytes = [];
    for (let n = value; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
    bytes = Uint8Array.from(bytes.length ? bytes : [0]);
  } else {
    let start = 0;
    while (start < value.length - 1 && value[start] === 0) start += 1; // minimal: no leading zero octets
    bytes = value.subarray(start);
  }
  if (bytes[0] & 0x80) bytes = concat([Uint8Array.of(0), bytes]); // keep it positive
  return tlv(0x02, bytes);
}

// An OBJECT IDENTIFIER from its dotted form: the first two arcs share a byte, the rest base 128.
export function oid(dotted) {
  const [first, second, ...rest] = dotted.split('.').map(Number);
  const out = [];
  for (const arc of [first * 40 + second, ...rest]) {
    const chunk = [arc & 0x7f];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) chunk.unshift(0x80 | (n & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Uint8Array.from(out));
}

// UTF-16 big-endian code units (a JavaScript string already is UTF-16: astral characters stay surrogate pairs).
export function utf16be(text) {
  const out = new Uint8Array(text.length * 2);
  for (let i = 0; i < text.length; i += 1) {
    out[2 * i] = text.charCodeAt(i) >> 8;
    out[2 * i + 1] = text.charCodeAt(i) & 0xff;
  }
  return out;
}

function compareBytes(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i += 1) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

// PEM (RFC 7468): base64 in lines of 64 characters between the label's markers.
export function toPem(label, der) {
  const base64 = btoa(Array.from(der, (byte) => String.fromCharCode(byte)).join(''));
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

// The DER inside the first PEM block of `text` (a certificate from the server's JSON answer).
export function fromPem(text) {
  const match = /-----BEGIN [A-Z0-9 ]+-----([A-Za-z0-9+/=\s]+)-----END [A-Z0-9 ]+-----/.exec(text);
  if (!match) throw new Error('the server sent something that is not PEM');
  return Uint8Array.from(atob(match[1].replace(/\s+/g, '')), (c) => c.charCodeAt(0));
}
