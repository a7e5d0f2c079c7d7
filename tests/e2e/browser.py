"""A real Chromium (Debian's, never a download) with a fresh NSS database and profile, for the browser tests.

Chromium on Linux reads client certificates and trust from $HOME/.pki/nssdb, so each browser gets a HOME of its
own: the CA trusted with `certutil`, a person's PKCS#12 imported with `pk12util`, and an auto-select rule in the
fresh profile's Default/Preferences (without one, headless Chromium waits forever for a certificate chooser:
every run here sits under a timeout). Screenshots land in tmp dirs, and also in $POCKETCA_SCREENSHOTS when set
(scripts/screenshots sets it to docs/screenshots)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
BROWSER_TIMEOUT = 90  # seconds for one headless run, generous: the machine is shared
FLAGS = [
    "--headless",
    "--no-sandbox",  # we run as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
]
CA_FILTER = {"ISSUER": {"CN": "pocketca root CA"}}


def need_browser() -> None:
    for tool in (CHROMIUM, CHROMEDRIVER, shutil.which("pk12util"), shutil.which("certutil")):
        if tool is None or not Path(tool).exists():
            pytest.skip("needs Debian's chromium, chromium-driver and libnss3-tools (.ci/run installs them)")


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, **kwargs)  # type: ignore[call-overload]
    assert result.returncode == 0, f"{argv[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result  # type: ignore[no-any-return]


@dataclass
class Browser:
    """One person's browser: a HOME with its NSS database and a Chromium profile."""

    home: Path
    profile: Path
    last_stderr: str = ""

    @classmethod
    def fresh(cls, root: Path, ca_file: Path) -> Browser:
        home, profile = root / "home", root / "profile"
        nssdb = home / ".pki" / "nssdb"
        nssdb.mkdir(parents=True)
        (profile / "Default").mkdir(parents=True)
        run(["certutil", "-N", "-d", f"sql:{nssdb}", "--empty-password"])
        run(["certutil", "-A", "-d", f"sql:{nssdb}", "-n", "pocketca root CA", "-t", "C,,", "-i", str(ca_file)])
        return cls(home, profile)

    @property
    def nssdb(self) -> str:
        return f"sql:{self.home / '.pki' / 'nssdb'}"

    def import_pkcs12(self, bundle: Path, password: str) -> str:
        return run(["pk12util", "-d", self.nssdb, "-i", str(bundle), "-W", password]).stdout.strip()

    def certificates(self) -> str:
        return run(["certutil", "-L", "-d", self.nssdb]).stdout

    def auto_select(self, origin: str, filters: list[dict[str, object]] | None = None) -> None:
        """The profile-level twin of the AutoSelectCertificateForUrls policy: pick the certificate for `origin`."""
        rule = {"setting": {"filters": [CA_FILTER] if filters is None else filters}}
        preferences = {"profile": {"content_settings": {"exceptions": {"auto_select_certificate": {
            f"{origin},*": rule}}}}}
        (self.profile / "Default" / "Preferences").write_text(json.dumps(preferences))

    def env(self) -> dict[str, str]:
        return {**os.environ, "HOME": str(self.home)}

    def dump_dom(self, url: str) -> str:
        """The page as the browser rendered it (headless --dump-dom), under a timeout."""
        argv = [CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}", "--dump-dom", url]
        env = self.env()
        result = subprocess.run(argv, capture_output=True, text=True, timeout=BROWSER_TIMEOUT, env=env, check=False)
        assert result.returncode == 0, f"chromium failed ({result.returncode}): {result.stderr[-2000:]}"
        self.last_stderr = result.stderr
        return result.stdout

    def screenshot(self, url: str, path: Path) -> Path:
        size = "--window-size=1100,520"
        argv = [CHROMIUM, *FLAGS, size, f"--user-data-dir={self.profile}", f"--screenshot={path}", url]
        subprocess.run(argv, capture_output=True, timeout=BROWSER_TIMEOUT, env=self.env(), check=True)
        assert path.stat().st_size > 1000
        keep(path)
        return path


def keep(path: Path) -> None:
    """Copies a screenshot to $POCKETCA_SCREENSHOTS (docs/screenshots, via scripts/screenshots)."""
    target = os.environ.get("POCKETCA_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(target) / path.name)


def console_driver(browser: Browser, downloads: Path) -> Any:
    """Selenium driving Debian's chromedriver and chromium (Selenium Manager never asked to download anything),
    with this browser's HOME (its NSS database trusts our CA) and downloads into `downloads`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # belt and braces: the driver and browser paths are given anyway
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, "--window-size=1200,860", f"--user-data-dir={browser.profile}"]:
        options.add_argument(flag)
    downloads.mkdir(parents=True, exist_ok=True)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    service = Service(executable_path=CHROMEDRIVER, env=browser.env())
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(BROWSER_TIMEOUT)
    driver.implicitly_wait(15)  # find_element retries for a while: the machine may be busy
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    return driver
