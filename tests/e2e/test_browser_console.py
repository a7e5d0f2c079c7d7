"""The web console driven end to end in a real Chromium through Selenium (Debian's chromedriver): log in, find a
certificate, revoke it, make a PKCS#12 that `openssl pkcs12` opens; a wrong token, a form without its CSRF token
and a read-only token are refused. Takes the console's screenshots on the way (docs/screenshots)."""

from __future__ import annotations

import base64
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LiveServer, start_server
from tests.e2e.browser import Browser, console_driver, keep, need_browser

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    need_browser()
    live = start_server(tmp_path_factory.mktemp("console") / "data", extra_env={"POCKETCA_HTTP_PORT": "0"})
    with live.client(headers={"Authorization": f"Bearer {live.admin_token}"}) as http:
        for cn, days in [("build-agent.internal", 5), ("alice@example.com", 20), ("bob@example.com", 60),
                         ("grafana.internal", 25)]:
            body = {"cn": cn, "password": PASSWORD, "validity_days": days}
            assert http.post("/pkcs12", json=body).status_code == 201
    yield live
    live.stop()


@pytest.fixture
def driver(server: LiveServer, tmp_path: Path) -> Iterator[Any]:
    browser = Browser.fresh(tmp_path / "operator", server.ca_file)
    driver = console_driver(browser, tmp_path / "downloads")
    yield driver
    driver.quit()


def shot(driver: Any, tmp_path: Path, name: str) -> None:
    """The whole page, not just the window (Chromium's DevTools screenshot beyond the viewport)."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    options = {"format": "png", "captureBeyondViewport": True, "clip": clip}
    data = driver.execute_cdp_cmd("Page.captureScreenshot", options)
    path = tmp_path / f"console-{name}.png"
    path.write_bytes(base64.b64decode(data["data"]))
    keep(path)


def click_and_wait(driver: Any, css: str) -> None:
    """Clicks a form's button and waits until the next page has replaced this one."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, css).click()
    WebDriverWait(driver, 60).until(expected_conditions.staleness_of(page))


def log_in(driver: Any, server: LiveServer, token: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{server.url}/ui/")
    assert driver.current_url.endswith("/ui/login")
    driver.find_element(By.NAME, "token").send_keys(token)
    click_and_wait(driver, "form[action='/ui/login'] button")


def test_an_operator_finds_revokes_and_issues(server: LiveServer, driver: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver.get(f"{server.url}/ui/login")
    shot(driver, tmp_path, "login")
    log_in(driver, server, server.admin_token[:-3] + "abc")
    assert "that admin token is not valid" in driver.page_source  # the login form's words, not HTTP's "bearer"
    assert "/ui/login" in driver.current_url

    driver.find_element(By.NAME, "token").send_keys(server.admin_token)
    click_and_wait(driver, "form[action='/ui/login'] button")
    assert driver.current_url.endswith("/ui/certs")
    session = driver.get_cookie("__Host-pocketca_session")  # Chromium took the __Host- cookie: HTTPS, Path=/
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict"
    assert session["path"] == "/" and not session.get("domain", "").startswith(".")  # host-only
    shot(driver, tmp_path, "certificates")

    driver.find_element(By.NAME, "cn").send_keys("grafana.internal")
    click_and_wait(driver, "form.filters button")
    assert "cn=grafana.internal" in driver.current_url
    rows = driver.find_elements(By.CSS_SELECTOR, "table.list tbody tr")
    assert len(rows) == 1 and "grafana.internal" in rows[0].text
    link = rows[0].find_element(By.TAG_NAME, "a").get_attribute("href")
    driver.get(link)
    serial = link.rsplit("/", 1)[1]
    shot(driver, tmp_path, "certificate")

    # a form whose CSRF token is gone (as a forged cross-site form would be) changes nothing
    driver.execute_script("document.querySelector(\"form[action$='/revoke'] input[name=csrf]\").remove()")
    click_and_wait(driver, "form[action$='/revoke'] button")
    assert "403" in driver.find_element(By.TAG_NAME, "h1").text
    assert "CSRF token is missing" in driver.page_source
    driver.get(f"{server.url}/ui/certs/{serial}")
    assert "valid" in driver.find_element(By.CSS_SELECTOR, "h1 .status").text

    Select(driver.find_element(By.NAME, "reason")).select_by_value("keyCompromise")
    click_and_wait(driver, "form[action$='/revoke'] button")
    assert "has been revoked" in driver.page_source
    assert driver.find_element(By.CSS_SELECTOR, "h1 .status").text == "revoked"
    with server.client(headers={"Authorization": f"Bearer {server.admin_token}"}) as http:
        stored = http.get(f"/certs/{serial}").json()
    assert (stored["status"], stored["revocation_reason"]) == ("revoked", "keyCompromise")

    driver.get(f"{server.url}/ui/expiring")
    assert len(driver.find_elements(By.CSS_SELECTOR, "figure.timeline svg circle")) == 2  # 5 and 20 days; not 60
    shot(driver, tmp_path, "expiring")

    driver.get(f"{server.url}/ui/pkcs12")
    for name, value in [("cn", "Carol Example"), ("sans", "carol@example.com"), ("password", PASSWORD),
                        ("password_again", PASSWORD)]:
        driver.find_element(By.NAME, name).send_keys(value)
    shot(driver, tmp_path, "pkcs12")
    driver.find_element(By.CSS_SELECTOR, "form[action='/ui/pkcs12'] button").click()
    bundle = wait_for_download(tmp_path / "downloads", ".p12")
    opened = subprocess.run(
        ["openssl", "pkcs12", "-in", str(bundle), "-passin", f"pass:{PASSWORD}", "-nodes"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert opened.returncode == 0, opened.stderr
    assert re.search(r"subject=\s*CN\s*=\s*Carol Example", opened.stdout), opened.stdout
    assert "-----BEGIN PRIVATE KEY-----" in opened.stdout and opened.stdout.count("BEGIN CERTIFICATE") == 2

    driver.get(f"{server.url}/ui/tokens")
    driver.find_element(By.CSS_SELECTOR, "form[action='/ui/tokens'] select[name=scope]")
    Select(driver.find_element(By.NAME, "scope")).select_by_value("read")
    driver.find_element(By.NAME, "ttl_hours").send_keys("8")
    click_and_wait(driver, "form[action='/ui/tokens'] button")
    read_token = driver.find_element(By.CSS_SELECTOR, "section.secret code").text
    assert read_token.startswith("pca_")
    shot(driver, tmp_path, "tokens")

    driver.get(f"{server.url}/ui/audit")
    actions = driver.find_element(By.CSS_SELECTOR, "table.list").text
    assert "certificate.revoke" in actions and "pkcs12.issue" in actions and "console.login" in actions
    shot(driver, tmp_path, "audit")

    click_and_wait(driver, "form[action='/ui/logout'] button")
    assert driver.current_url.endswith("/ui/login")
    driver.get(f"{server.url}/ui/certs")
    assert driver.current_url.endswith("/ui/login")

    # a read token sees, cannot change: no forms, and a POST it makes anyway is refused
    log_in(driver, server, read_token)
    driver.get(f"{server.url}/ui/certs")
    other = driver.find_element(By.CSS_SELECTOR, "table.list tbody tr a").get_attribute("href").rsplit("/", 1)[1]
    driver.get(f"{server.url}/ui/certs/{other}")
    assert "read only" in driver.page_source
    driver.implicitly_wait(0)
    assert not driver.find_elements(By.CSS_SELECTOR, "form[action$='/revoke']")
    driver.implicitly_wait(15)
    shot(driver, tmp_path, "read-only")
    driver.execute_script(
        "const f = document.createElement('form'); f.method = 'post'; f.action = location.pathname + '/revoke';"
        "const c = document.querySelector('input[name=csrf]').cloneNode(); f.appendChild(c);"
        "document.body.appendChild(f); f.submit();"
    )
    WebDriverWait(driver, 60).until(lambda d: "may not do this" in d.page_source)
    assert "403" in driver.find_element(By.TAG_NAME, "h1").text
    assert "may not do this" in driver.page_source
    with server.client(headers={"Authorization": f"Bearer {server.admin_token}"}) as http:
        assert http.get(f"/certs/{other}").json()["status"] == "valid"
        events = http.get("/audit").json()["items"]
    refused = [e for e in events if e["action"] == "certificate.revoke" and e["outcome"] == "refused"]
    assert refused and refused[0]["serial"] == other


def wait_for_download(directory: Path, suffix: str, timeout: float = 60) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in directory.glob(f"*{suffix}") if p.stat().st_size > 0]
        if done:
            return done[0]
        time.sleep(0.2)
    raise AssertionError(f"no {suffix} download in {directory}: {sorted(directory.iterdir())}")
