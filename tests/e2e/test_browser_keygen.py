"""The key made in the browser (issue 24 §2): Debian's Chromium through Selenium opens an enrolment page served
under a strict CSP, WebCrypto makes the key (P-256 and RSA-2048), the page posts a CSR, a throwaway CA of our own
`service.ca` signs it, and the page saves a PKCS#12 that `openssl pkcs12` opens with the password and `pk12util`
imports into a fresh NSS database, where `certutil` lists the identity with its key. Only the CSR left the browser.
The page and its endpoint are the test's own (tests/e2e/enroll_page.py); the scripts are service/enroll/static/."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from service.ca.csr import load_csr
from tests.e2e.browser import Browser, console_driver, keep, need_browser
from tests.e2e.enroll_page import EnrollSite, serve
from tests.helpers import free_port

PASSWORD = "Grüße aus Köln 2026"  # not ASCII: PBKDF2 takes it as UTF-8, the MAC's KDF as a BMPString
WAIT = 180  # seconds for one enrolment: 600,000 PBKDF2 rounds twice and 600,000 SHA-256 rounds, on a busy machine

# Records the page's progress, CSP violations and outcome in window.__enroll, for the test to read.
WATCH = """
window.__enroll = {steps: [], violations: [], start: performance.now()};
document.addEventListener('securitypolicyviolation', (e) => window.__enroll.violations.push(e.violatedDirective));
const form = document.querySelector('form[data-enroll-csr-url]');
form.addEventListener('enroll:step', (e) => window.__enroll.steps.push([e.detail.step, performance.now()]));
form.addEventListener('enroll:done', (e) => { window.__enroll.done = e.detail; });
form.addEventListener('enroll:error', (e) => { window.__enroll.error = e.detail; });
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EnrollSite, str]]:
    need_browser()
    site = EnrollSite(tmp_path_factory.mktemp("enroll-site"))
    port = free_port()
    server = serve(site, port)
    yield site, f"https://localhost:{port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def driver(site: tuple[EnrollSite, str], tmp_path: Path) -> Iterator[Any]:
    browser = Browser.fresh(tmp_path / "person", site[0].ca_file)  # the throwaway CA trusted in its NSS database
    driver = console_driver(browser, tmp_path / "downloads")
    yield driver
    driver.quit()


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False, **kwargs)


def open_page(driver: Any, url: str) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    form = driver.find_element(By.CSS_SELECTOR, "form[data-enroll-csr-url]")
    WebDriverWait(driver, 30).until(lambda _: form.get_attribute("data-enroll-state") == "idle")  # script ran
    assert form.is_displayed()
    driver.execute_script(WATCH)
    return form


def fill(driver: Any, key_type: str, password: str, again: str | None = None) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.NAME, "key_type")).select_by_value(key_type)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.NAME, "password_again").send_keys(password if again is None else again)


def wait_until_settled(driver: Any, form: Any) -> dict[str, Any]:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, WAIT).until(lambda _: form.get_attribute("data-enroll-state") in {"done", "failed"})
    return driver.execute_script("return window.__enroll")  # type: ignore[no-any-return]


def wait_for_download(directory: Path) -> Path:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done = [p for p in directory.glob("*.p12") if p.stat().st_size > 0]
        if done and not list(directory.glob("*.crdownload")):
            return done[0]
        time.sleep(0.2)
    raise AssertionError(f"no .p12 in {directory}: {sorted(p.name for p in directory.iterdir())}")


def shot(driver: Any, path: Path) -> None:
    data = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    path.write_bytes(base64.b64decode(data["data"]))
    keep(path)


@pytest.mark.parametrize(("key_type", "key_class", "nss_kind"), [
    ("p256", ec.EllipticCurvePrivateKey, "ec"),
    ("rsa2048", rsa.RSAPrivateKey, "rsa"),
])
def test_the_browser_makes_the_key_and_saves_a_pkcs12_that_openssl_and_nss_open(
    site: tuple[EnrollSite, str], driver: Any, tmp_path: Path, key_type: str, key_class: type, nss_kind: str
) -> None:
    from selenium.webdriver.common.by import By

    enroll_site, origin = site
    path = enroll_site.invite(f"secret-{key_type}", "Alice Example", "alice@example.com")
    form = open_page(driver, origin + path)
    fill(driver, key_type, PASSWORD)
    before = len(enroll_site.seen)
    driver.execute_script(  # a double click sends one request
        "window.__enroll.start = performance.now(); const b = arguments[0]; b.click(); b.click();",
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]"),
    )
    watched = wait_until_settled(driver, form)
    assert watched.get("error") is None, watched
    assert watched["violations"] == []  # the strict CSP held: nothing inline, nothing from elsewhere
    assert [step for step, _ in watched["steps"]] == ["key", "request", "pkcs12", "saved"]
    done = watched["done"]
    assert done["filename"] == "alice.p12" and done["keyType"] == key_type
    shot(driver, tmp_path / f"enroll-browser-key-{key_type}.png")
    bundle = wait_for_download(tmp_path / "downloads")
    assert bundle.name == "alice.p12"

    # what left the browser: one POST, JSON with the CSR alone, signed by the key that is now in the bundle
    posts = [seen for seen in enroll_site.seen[before:] if seen.method == "POST"]
    assert len(posts) == 1 and posts[0].content_type == "application/json"
    sent = json.loads(posts[0].body)
    assert list(sent) == ["csr"] and b"PRIVATE KEY" not in posts[0].body
    csr = load_csr(sent["csr"].encode())
    assert csr.subject.rfc4514_string() == "CN=Alice Example"
    certificate = enroll_site.issued[-1]
    assert format(certificate.serial_number, "x") == done["serial"]

    opened = pkcs12.load_pkcs12(bundle.read_bytes(), PASSWORD.encode())
    assert isinstance(opened.key, key_class)
    assert opened.key.public_key() == csr.public_key() == certificate.public_key()
    assert opened.cert is not None and opened.cert.certificate == certificate
    assert opened.cert.friendly_name == b"Alice Example"
    assert [c.certificate for c in opened.additional_certs] == [enroll_site.ca]

    info = run(["openssl", "pkcs12", "-info", "-noout", "-in", str(bundle), "-passin", f"pass:{PASSWORD}"])
    print(f"\n$ openssl pkcs12 -info -noout -in {bundle.name} -passin pass:…\n{info.stdout}{info.stderr}")
    assert info.returncode == 0, info.stderr
    assert "MAC: sha256, Iteration 600000" in info.stderr
    pbes2 = "PBES2, PBKDF2, AES-256-CBC, Iteration 600000, PRF hmacWithSHA256"
    assert f"PKCS7 Encrypted data: {pbes2}" in info.stderr and f"Shrouded Keybag: {pbes2}" in info.stderr
    assert info.stderr.count("Certificate bag") == 2
    wrong = run(["openssl", "pkcs12", "-info", "-noout", "-in", str(bundle), "-passin", "pass:Grusse aus Koln 2026"])
    assert wrong.returncode != 0 and "verify error" in wrong.stderr.lower()

    nssdb = tmp_path / "nssdb"
    nssdb.mkdir()
    assert run(["certutil", "-N", "-d", f"sql:{nssdb}", "--empty-password"]).returncode == 0
    imported = run(["pk12util", "-d", f"sql:{nssdb}", "-i", str(bundle), "-W", PASSWORD])
    listed = run(["certutil", "-L", "-d", f"sql:{nssdb}"])
    keys = run(["certutil", "-K", "-d", f"sql:{nssdb}"])
    print(f"$ pk12util -d sql:nssdb -i {bundle.name} -W …\n{imported.stdout}{imported.stderr}")
    print(f"$ certutil -L -d sql:nssdb\n{listed.stdout}$ certutil -K -d sql:nssdb\n{keys.stdout}{keys.stderr}")
    assert imported.returncode == 0 and "PKCS12 IMPORT SUCCESSFUL" in imported.stdout, imported.stderr
    assert re.search(r"^Alice Example\s+u,u,u$", listed.stdout, re.MULTILINE), listed.stdout
    assert re.search(rf"<\s*0>\s+{nss_kind}\s+[0-9a-f]{{40}}\s+Alice Example$", keys.stdout, re.MULTILINE), keys.stdout
    refused = run(["pk12util", "-d", f"sql:{nssdb}", "-i", str(bundle), "-W", "Grusse aus Koln 2026"])
    assert refused.returncode != 0

    timings = {step: round(at - watched["start"]) for step, at in watched["steps"]}
    print(f"{key_type}: ms after the click, at the start of each step: {timings}")


def test_a_spent_link_gets_the_services_answer_and_no_file(
    site: tuple[EnrollSite, str], driver: Any, tmp_path: Path
) -> None:
    enroll_site, origin = site
    path = enroll_site.invite("secret-spent", "Bob Example", "bob@example.com")
    enroll_site.invitations["secret-spent"].spent = True
    form = open_page(driver, origin + path)
    fill(driver, "p256", PASSWORD)
    form.submit()
    watched = wait_until_settled(driver, form)
    assert watched["error"] == {"message": "this invitation link has been used already", "status": 410, "retry": False}
    from selenium.webdriver.common.by import By

    assert driver.find_element(By.CSS_SELECTOR, "[data-enroll-status]").text == watched["error"]["message"]
    assert not (tmp_path / "downloads").exists() or not list((tmp_path / "downloads").iterdir())


def test_passwords_that_differ_or_are_short_send_nothing(
    site: tuple[EnrollSite, str], driver: Any
) -> None:
    from selenium.webdriver.common.by import By

    enroll_site, origin = site
    path = enroll_site.invite("secret-typo", "Carol Example")
    form = open_page(driver, origin + path)
    before = len(enroll_site.seen)
    fill(driver, "p256", PASSWORD, again=PASSWORD + "!")
    form.submit()
    assert wait_until_settled(driver, form)["error"]["message"] == "The two passwords differ."
    for name in ("password", "password_again"):
        driver.find_element(By.NAME, name).clear()
    fill(driver, "p256", "short")
    form.submit()
    assert "at least 8 characters" in wait_until_settled(driver, form)["error"]["message"]
    assert not [seen for seen in enroll_site.seen[before:] if seen.method == "POST"]
    assert not enroll_site.invitations["secret-typo"].spent


def test_the_iterated_sha256_agrees_with_webcrypto(site: tuple[EnrollSite, str], driver: Any) -> None:
    """pkcs12.js hashes the MAC key 599,999 times in JavaScript (WebCrypto has no iterated hash): the loop must
    agree with the browser's own SHA-256, for one round and for many, on inputs of every byte."""
    enroll_site, origin = site
    open_page(driver, origin + enroll_site.invite("secret-sha", "Dave Example"))
    compared = driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        import(new URL('/enroll/static/pkcs12.js', location.href).href).then(async ({ sha256Repeat }) => {
          const results = [];
          for (const rounds of [1, 2, 3, 1000]) {
            const start = crypto.getRandomValues(new Uint8Array(32));
            let expected = start;
            for (let i = 0; i < rounds; i += 1) {
              expected = new Uint8Array(await crypto.subtle.digest('SHA-256', expected));
            }
            results.push([rounds, Array.from(sha256Repeat(start, rounds)).join() === Array.from(expected).join()]);
          }
          const t = performance.now();
          sha256Repeat(new Uint8Array(32), 600000);
          done({ results, ms: performance.now() - t });
        }, (error) => done({ error: String(error) }));
    """)
    assert compared.get("error") is None, compared
    assert compared["results"] == [[1, True], [2, True], [3, True], [1000, True]]
    print(f"\n600,000 rounds of SHA-256 in JavaScript: {compared['ms']:.0f} ms")


def test_the_csp_watch_sees_a_violation(site: tuple[EnrollSite, str], driver: Any) -> None:
    """The negative control for `violations == []` above: on this page a script URL from a plain string, an inline
    script and a script from elsewhere are all refused, and the watch sees each refusal."""
    from selenium.webdriver.support.ui import WebDriverWait

    enroll_site, origin = site
    open_page(driver, origin + enroll_site.invite("secret-csp", "Erin Example"))
    outcome = driver.execute_script("""
        const s = document.createElement('script');
        try { s.src = 'data:text/javascript,window.__ran = 1'; } catch (e) { return e.name; }
        return 'assigned';
    """)
    assert outcome == "TypeError"  # require-trusted-types-for 'script': a sink refuses a plain string
    driver.execute_script("""
        const policy = trustedTypes.createPolicy('test', {createScript: (s) => s, createScriptURL: (s) => s});
        const inline = document.createElement('script');
        inline.text = policy.createScript('window.__ran = 1');
        const elsewhere = document.createElement('script');
        elsewhere.src = policy.createScriptURL('https://127.0.0.2:9/x.js');
        document.body.append(inline, elsewhere);
    """)
    WebDriverWait(driver, 10).until(lambda d: len(d.execute_script("return window.__enroll.violations")) >= 3)
    violations = driver.execute_script("return window.__enroll.violations")
    assert violations == ["require-trusted-types-for", "script-src-elem", "script-src-elem"], violations
    assert driver.execute_script("return window.__ran") is None
