"""The README's walkthroughs, run as written (issue 22).

Every ```sh block of README.md is either run here or named in NOT_RUN with the reason, so a new block cannot slip by.
The blocks that run are read from the README itself, in its order, into one shell session (exported variables
carry from block to block, as in the reader's terminal) in one working directory, beside a real `pocketca serve`
started as the README says (its data dir is `pocketca-data/` there). The only change made to a block: the
service's URLs get the ports this run was given (`https://localhost:8443`, `http://localhost:8080`). The working
directory is a git repository with the project's .gitignore, which must hide everything the walkthroughs wrote.

The certbot recipe runs as root on port 80 (CI runs as root), adds `web1.internal` to /etc/hosts as the README
says (put back as it was afterwards), and keeps certbot's own directories out of /etc through a cli.ini of its own
(XDG_CONFIG_HOME) that also answers its questions (--non-interactive)."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from service.settings import Settings
from tests.conftest import LiveServer, database_url_for, start_server

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
ACME = "ACME: certbot, lego, cert-manager"


@dataclass(frozen=True)
class Block:
    heading: str
    index: int  # the how-many-th ```sh block under that heading
    text: str


def shell_blocks() -> list[Block]:
    blocks: list[Block] = []
    heading, code, lines = "", None, []
    for line in README.splitlines():
        fence = re.match(r"^\s*```(\w*)\s*$", line)
        if code is None and fence:
            code, lines = fence.group(1), []
        elif code is not None and fence:
            if code == "sh":
                index = sum(1 for b in blocks if b.heading == heading)
                blocks.append(Block(heading, index, "\n".join(lines) + "\n"))
            code = None
        elif code is not None:
            lines.append(line)
        elif match := re.match(r"^#{2,4} (.+)$", line):
            heading = match.group(1).strip()
    return blocks


# in the order they run, which is the README's order
WALKTHROUGHS = [
    ("The client-certificate story, with openssl and curl", 0),
    ("Revoking it: /whoami, the CRL and openssl agree", 0),
    ("Client commands and scripts", 0),
    ("Client commands and scripts", 1),
    ("A pipeline gets a certificate with one line", 0),
    ("A pipeline gets a certificate with one line", 1),
    ("PKCS#12 for people", 0),
    ("Checking revocation with NSS, OpenSSL and GnuTLS", 0),
    (ACME, 0),
    (ACME, 1),
]
NOT_RUN = {
    (
        "Quick start",
        0,
    ): "the service itself: started here as it says; tests/e2e/test_beside_a_service.py runs it as written",
    ("Quick start", 1): "the suite itself; tests/test_test_script.py holds its flow",
    ("The person's side: a certificate in the browser", 0): "writes the NSS database in $HOME; "
    "tests/e2e/test_browser_whoami.py does the same into a fresh browser profile",
    ("Relying parties", 0): "replaces a file under /etc/nginx and reloads nginx: a relying party's host",
    ("Backup and restore", 0): "restore wants the service stopped; tests/e2e/test_backup_restore.py runs both",
    ("An offline root, issuing intermediates, rotation and an HSM", 0): "a ceremony with removable media and an HSM; "
    "tests/e2e/test_issuers_live.py and tests/e2e/test_hsm_live.py run it",
    (ACME, 2): "other machines, a DNS hook and lego: tests/e2e/test_acme_clients.py drives them",
    ("Docker", 0): "needs docker; tests/test_dockerfile.py checks the image's commands against a real server",
    ("Development", 0): "the suite's fast tier, the suite itself: not run from inside it",
}


def _block(heading: str, index: int = 0) -> str:
    found = [b for b in shell_blocks() if (b.heading, b.index) == (heading, index)]
    assert found, f"no sh block {index} under {heading!r}"
    return found[0].text


def _other_block(heading: str, language: str) -> str:
    section = README.split(heading, 1)[1]
    match = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert match is not None, f"no {language} block under {heading}"
    return match.group(1)


def test_every_shell_block_is_run_or_said_why_not() -> None:
    found = {(b.heading, b.index) for b in shell_blocks()}
    assert found == set(WALKTHROUGHS) | set(NOT_RUN), (found - set(WALKTHROUGHS) - set(NOT_RUN), found)
    assert not set(WALKTHROUGHS) & set(NOT_RUN)
    positions = [README.index(_block(*key)) for key in WALKTHROUGHS]
    assert positions == sorted(positions), "run in the README's order"


# --- the session -----------------------------------------------------------------------------------------


@dataclass
class Session:
    """One reader's terminal: a working directory, and the variables exported so far."""

    work: Path
    state: Path
    env: dict[str, str]
    server: LiveServer

    def localise(self, text: str) -> str:
        text = text.replace("https://localhost:8443", self.server.url)
        text = text.replace("http://localhost:8080", f"http://localhost:{self.server.http_port}")
        assert ":8443" not in text and ":8080" not in text, text  # no default port left to collide with
        return text

    def sh(self, text: str, timeout: float = 240) -> str:
        script = f"source {self.state} 2>/dev/null\n{self.localise(text)}\nexport -p > {self.state}\n"
        process = subprocess.Popen(
            ["bash", "-c", script],
            cwd=self.work,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # so that all of it stops on a timeout, whatever the block started
        )
        try:
            out, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, _ = process.communicate()
            raise AssertionError(f"a README block ran for more than {timeout} s:\n{text}\n{out}") from None
        with (self.state.parent / "transcript.log").open("a") as transcript:  # the session, as a reader saw it
            transcript.write(f"$ {self.localise(text).strip()}\n{out}\n")
        return out

    def export(self, name: str, value: str) -> None:
        with self.state.open("a") as state:
            state.write(f"export {name}={shlex.quote(value)}\n")


def _serve_line() -> str:
    lines = [line for line in _block(ACME, 0).splitlines() if re.search(r"\bpocketca serve\b", line)]
    assert len(lines) == 1, lines
    return lines[0]


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


@pytest.fixture
def hosts_file_kept() -> Iterator[None]:
    """The certbot recipe adds a line to /etc/hosts; what was there comes back afterwards."""
    before = Path("/etc/hosts").read_text()
    yield
    if Path("/etc/hosts").read_text() != before:
        Path("/etc/hosts").write_text(before)


@pytest.fixture
def session(tmp_path: Path, hosts_file_kept: None) -> Iterator[Session]:
    if os.geteuid() != 0:
        pytest.fail("the README's certbot recipe runs as root (port 80, /etc/hosts): run the suite as root, as CI does")
    assert _port_free(80), "port 80 is taken: certbot's standalone server needs it for the README's recipe"
    work = tmp_path / "work"
    work.mkdir()
    (work / ".gitignore").write_text((ROOT / ".gitignore").read_text())
    git = ["git", "-c", "user.name=readme", "-c", "user.email=readme@example.com"]
    for argv in (["init", "-q"], ["add", ".gitignore"], ["commit", "-q", "-m", "the project's .gitignore"]):
        subprocess.run([*git, *argv], cwd=work, check=True, capture_output=True)
    # the service, started as the recipe restarts it: with the settings on its `pocketca serve` line
    settings = dict(re.findall(r"\b(POCKETCA_\w+)=(\S+)", _serve_line()))
    assert "POCKETCA_ACME_ALLOW" in settings
    server = start_server(work / "pocketca-data", extra_env=settings, log_path=tmp_path / "serve.log")
    if "acme_allow" in Settings.model_fields:  # once the identifier policy is there, the setting is a known one
        assert "not a pocketca setting" not in server.log(), server.log()
    xdg = tmp_path / "xdg"
    (xdg / "letsencrypt").mkdir(parents=True)
    (xdg / "letsencrypt" / "cli.ini").write_text(
        f"config-dir = {tmp_path / 'certbot' / 'config'}\nwork-dir = {tmp_path / 'certbot' / 'work'}\n"
        f"logs-dir = {tmp_path / 'certbot' / 'logs'}\nnon-interactive = True\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POCKETCA_", "REQUESTS_CA_BUNDLE"))}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # `pocketca`: the venv activated, as it says
    env["XDG_CONFIG_HOME"] = str(xdg)
    if url := database_url_for(work / "pocketca-data"):
        env["POCKETCA_DATABASE_URL"] = url  # the local commands use the service's database (the PostgreSQL pass)
    try:
        yield Session(work, tmp_path / "state.sh", env, server)
    finally:
        server.stop()


def test_the_walkthroughs_run_as_written(session: Session, tmp_path: Path) -> None:
    blocks = iter(WALKTHROUGHS)

    def run(done_already: str = "") -> str:
        text = _block(*next(blocks))
        return session.sh(text.replace(done_already, "") if done_already else text)

    # the client-certificate story, the same from Python, then revoking it
    out = run()
    assert (session.work / "alice.pem").exists(), out
    assert '"cn":"alice"' in out and '"status":401' in out
    python = session.localise(_other_block("## The same from Python, with httpx", "python"))
    result = subprocess.run(
        [sys.executable, "-c", python], cwd=session.work, env=session.env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stdout.strip() == "alice", result.stderr
    out = run()
    assert '"status":"revoked"' in out and '"revocation_reason":"keyCompromise"' in out
    assert '"status":403' in out and "verify OK" in out and "Key Compromise" in out
    assert "certificate revoked" in out

    # client commands: enroll, renew, revoke on the CA host; then a script with a read token and a bootstrapped CA
    out = run()
    assert "enrolled" in out and "renewed:" in out and "(superseded)" in out, out
    assert "Traceback" not in out and (session.work / "build-42" / "key.pem").exists()
    out = run()
    assert "wrote ca.pem" in out, out
    assert (session.work / "ca.pem").read_bytes() == (session.work / "pocketca-data" / "ca.pem").read_bytes()
    assert '"status": "revoked"' in out and "revocation_reason" in out, out  # the serial, looked up
    assert re.search(r"not_after:\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", out), out  # the local file

    # a pipeline: the admin's token becomes the pipeline's secret POCKETCA_TOKEN
    out = run()
    token = out.strip().splitlines()[-1]
    assert re.fullmatch(r"pca_[0-9a-f]{16}_\S+", token), out
    session.export("POCKETCA_TOKEN", token)
    out = run()
    assert "enrolled" in out, out
    assert {p.name for p in (session.work / "tls").iterdir()} == {"key.pem", "cert.pem", "chain.pem"}
    assert (session.work / "tls" / "key.pem").stat().st_mode & 0o777 == 0o600

    # PKCS#12 for people
    out = run()
    assert (session.work / "alice.p12").exists() and "MAC: sha256" in out, out

    # relying parties check revocation: NSS, OpenSSL, GnuTLS
    out = run()
    assert out.count("Chain is good!") == 2, out
    assert "leaf.pem: OK" in out and "leaf.pem: good" in out and "Certificate Status: good" in out, out

    # ACME: certbot on the machine that runs pocketca (the service was started with the recipe's settings above)
    out = run(done_already=_serve_line())
    assert "web1.internal" in Path("/etc/hosts").read_text(), out
    out = run()
    assert "Successfully received certificate" in out, out
    assert "No renewals were attempted" in out or "not yet due" in out, out
    assert "successfully revoked" in out, out
    with session.server.client(headers={"Authorization": f"Bearer {session.server.admin_token}"}) as http:
        listed = http.get("/certs", params={"cn": "web1.internal"}).json()["items"]
        assert len(listed) == 1, listed  # certbot deleted its copy with the revocation: the service kept its own
        record = http.get(f"/certs/{listed[0]['serial']}").json()
    assert record["issued_via"] == "acme" and record["issued_by"].startswith("acme:"), record
    assert record["status"] == "revoked" and record["revocation_reason"] == "keyCompromise", record
    assert next(blocks, None) is None

    # and git sees nothing the walkthroughs wrote
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=session.work,
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert status == "", status
    assert {"alice.p12", "build-42", "tls", "web", "nssdb"} <= {p.name for p in session.work.iterdir()}


def test_profiles_example_is_valid() -> None:
    import tomllib

    from service.ca.profiles import parse_profiles

    profiles = parse_profiles(tomllib.loads(_other_block("### Profiles: `<data dir>/profiles.toml`", "toml")))
    assert profiles["client"].max_validity_days == 30 and profiles["client"].default_validity_days == 30
    assert profiles["build-runner"].min_rsa_bits == 3072


def test_documented_command_lines_parse() -> None:
    from service.cli import build_parser

    unit = _other_block("### A host renews from a systemd timer", "ini")
    exec_start = unit.split("ExecStart=", 1)[1].split("\n\n", 1)[0].replace("\\\n", " ")
    args = build_parser().parse_args(shlex.split(exec_start)[1:])
    assert args.command == "renew" and args.exec_command == "systemctl reload nginx"
    daemon = README.split("# /etc/systemd/system/pocketca-renew.service (the daemon form)", 1)[1]
    exec_start = daemon.split("ExecStart=", 1)[1].split("\nRestart=", 1)[0].replace("\\\n", " ")
    args = build_parser().parse_args(shlex.split(exec_start)[1:])
    assert args.command == "renew" and args.daemon and args.exec_command == "systemctl reload nginx"


def test_gitignore_hides_what_every_out_dir_of_the_readme_gets(tmp_path: Path) -> None:
    """Issue 22: `tls/` and `web3/` showed as untracked after the pipeline example."""
    folders = {"web3"} | {
        match.strip("./") for block in shell_blocks() for match in re.findall(r"--out-dir\s+(\S+)", block.text)
    }
    assert {"tls", "build-42", "web"} <= folders, folders
    (tmp_path / ".gitignore").write_text((ROOT / ".gitignore").read_text())
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    for folder in folders:
        for name in ("key.pem", "cert.pem", "chain.pem"):
            (tmp_path / folder).mkdir(exist_ok=True)
            (tmp_path / folder / name).write_text("written by the walkthrough\n")
    for name in ("alice.key", "alice.csr", "alice.pem", "alice.p12", "ca.pem", "crl.der", "leaf.der", "ca.der"):
        (tmp_path / name).write_text("written by the walkthrough\n")
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=tmp_path,
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert status.splitlines() == ["?? .gitignore"], status
