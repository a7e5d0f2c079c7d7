// The enrolment page's script: key in this browser, CSR to the service, certificate back, PKCS#12 saved here.
// The private key never leaves the device: only the CSR is sent.
//
// The page holds one <form data-enroll-csr-url="..."> (hidden until this script finds WebCrypto) with
//   data-enroll-cn          the CN written into the CSR (the service takes the names from the invitation anyway)
//   data-enroll-filename    optional: the download is <filename>.p12 (default: from the certificate's CN)
//   name="key_type"         optional select or radios: p256 (default) or rsa2048
//   name="password"         the PKCS#12 password, at least 8 characters; name="password_again" optional, must match
//   [data-enroll-status]    optional: progress and errors are written here (textContent only)
//   a[data-enroll-save]     optional: gets the file's link after success, to save it again
// The form's data-enroll-state is idle, busy, done or failed; it fires (bubbling) CustomEvents
//   enroll:step  {step: 'key' | 'request' | 'pkcs12' | 'saved'}
//   enroll:done  {filename, serial, notAfter, fingerprint, keyType}
//   enroll:error {message, status (HTTP status, 0 without an answer), retry (whether trying again may help)}

import { fromPem, toPem } from './der.js';
import { KEY_TYPES, buildCsr, generateKey, publicKeyInfo } from './pkcs10.js';
import { buildPkcs12 } from './pkcs12.js';

export const MIN_PASSWORD_LENGTH = 8; // as service/ca/pkcs12.py

class EnrollError extends Error {
  constructor(message, { status = 0, retry = false } = {}) {
    super(message);
    this.status = status;
    this.retry = retry;
  }
}

for (const form of document.querySelectorAll('form[data-enroll-csr-url]')) enhance(form);

function enhance(form) {
  if (!window.isSecureContext || !window.crypto?.subtle) return; // the page's other path (key made by the service)
  form.hidden = false;
  setState(form, 'idle');
  let busy = false;
  let made = null; // {keyType, keyPair, csr}: kept after a failed POST, so trying again sends the same request
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (busy || form.dataset.enrollState === 'done') return; // a double click sends one request
    busy = true;
    setState(form, 'busy');
    try {
      const password = readPassword(form);
      const keyType = form.elements.key_type?.value || 'p256';
      if (!KEY_TYPES[keyType]) throw new EnrollError(`unknown key type ${keyType}`);
      if (made?.keyType !== keyType) {
        step(form, 'key', keyType === 'p256' ? 'Making your key (P-256)…' : 'Making your key (RSA 2048)…');
        const keyPair = await generateKey(keyType);
        made = { keyType, keyPair, csr: await buildCsr(keyPair, keyType, form.dataset.enrollCn ?? '') };
      }
      step(form, 'request', 'Asking for your certificate…');
      const answer = await postCsr(form.dataset.enrollCsrUrl, toPem('CERTIFICATE REQUEST', made.csr));
      const certificates = [answer.certificate, ...(answer.chain ?? [])].map(fromPem);
      if (!contains(certificates[0], await publicKeyInfo(made.keyPair))) {
        made = null;
        throw new EnrollError('The certificate the service sent is not for the key made here.');
      }
      step(form, 'pkcs12', 'Locking your certificate with your password…');
      const friendlyName = answer.cn || form.dataset.enrollCn || 'certificate';
      const bundle = await buildPkcs12({ privateKey: made.keyPair.privateKey, certificates, password, friendlyName });
      const filename = `${safeName(form.dataset.enrollFilename || friendlyName)}.p12`;
      save(form, bundle, filename);
      made = null;
      for (const field of form.querySelectorAll('input[type=password]')) field.value = '';
      step(form, 'saved', `Saved ${filename}. Open it to import your certificate; it asks for the password you chose.`);
      setState(form, 'done');
      const detail = {
        filename, serial: answer.serial, notAfter: answer.not_after, fingerprint: answer.fingerprint_sha256, keyType,
      };
      form.dispatchEvent(new CustomEvent('enroll:done', { bubbles: true, detail }));
    } catch (error) {
      const failure = error instanceof EnrollError ? error : new EnrollError(`Something went wrong: ${error.message}`);
      if (!failure.retry && failure.status) made = null; // the service refused this request: start afresh
      setState(form, 'failed');
      show(form, failure.message);
      const detail = { message: failure.message, status: failure.status, retry: failure.retry };
      form.dispatchEvent(new CustomEvent('enroll:error', { bubbles: true, detail }));
    } finally {
      busy = false;
    }
  });
}

function readPassword(form) {
  const password = form.elements.password?.value ?? '';
  const again = form.elements.password_again;
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw new EnrollError(`Choose a password of at least ${MIN_PASSWORD_LENGTH} characters.`);
  }
  if (again && again.value !== password) throw new EnrollError('The two passwords differ.');
  return password;
}

// POST {"csr": PEM} as JSON; the answer is POST /csr's JSON. Errors are RFC 9457 problem documents.
async function postCsr(url, csr) {
  let response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ csr }),
      credentials: 'same-origin',
      cache: 'no-store',
      redirect: 'error',
    });
  } catch {
    throw new EnrollError('The service cannot be reached. Check the connection and try again.', { retry: true });
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const retry = response.status >= 500 || response.status === 429;
    const message = body.detail || body.title || `The service answered ${response.status}.`;
    throw new EnrollError(message, { status: response.status, retry });
  }
  if (typeof body.certificate !== 'string') throw new EnrollError('The service sent no certificate.');
  return body;
}

// The SubjectPublicKeyInfo appears verbatim inside the certificate's DER: enough to know the certificate is ours.
function contains(haystack, needle) {
  outer: for (let i = 0; i + needle.length <= haystack.length; i += 1) {
    for (let j = 0; j < needle.length; j += 1) if (haystack[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

function save(form, bundle, filename) {
  let link = form.querySelector('a[data-enroll-save]');
  if (!link) {
    link = document.createElement('a');
    link.dataset.enrollSave = '';
    link.textContent = 'Save the file again';
    form.append(link);
  }
  if (link.href.startsWith('blob:')) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(new Blob([bundle], { type: 'application/x-pkcs12' }));
  link.download = filename;
  link.hidden = false;
  link.click();
}

function safeName(name) {
  return name.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+|-+$/g, '').slice(0, 64) || 'certificate';
}

function setState(form, state) {
  form.dataset.enrollState = state;
  for (const button of form.querySelectorAll('button, input[type=submit]')) {
    button.disabled = state === 'busy' || state === 'done';
  }
}

function step(form, name, message) {
  show(form, message);
  form.dispatchEvent(new CustomEvent('enroll:step', { bubbles: true, detail: { step: name } }));
}

function show(form, message) {
  const status = form.querySelector('[data-enroll-status]');
  if (status) status.textContent = message;
}
