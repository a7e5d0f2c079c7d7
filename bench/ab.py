"""Two builds of pocketca side by side: this checkout against an earlier commit, in one run, runs interleaved.

    .venv/bin/python -m bench.ab --base 15701f3 [--runs 3] [--seconds 5]

The machine is shared and noisy (bench/SPEED.md): a change is judged by the ratio of medians measured in the same
run, never by figures from two runs. The base commit is checked out into a temporary git worktree and served by
this checkout's virtualenv (its code first on sys.path), so the two differ only in pocketca's own code. Both
servers run at once (2 workers each, idle while the other is measured); each round measures P-256 issuance at
c=8 (wrk, as bench/suite.py does) and `/whoami` keep-alive on 8 connections, in alternating order. Then each
side's server is stopped and started again on its data dir, `--runs` times in alternating order: start-up on an
existing data dir, from `pocketca serve` to the first 200 from /healthz (every worker up before the next).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import N_CSRS, VENV_BIN, Processes, check_tools, free_port, log
from bench.issuance import CaSetup, IssueRun, issuance_run, write_bodies
from bench.servers import make_csrs, start_pocketca_ready
from bench.whoami import client_certificate, keepalive_run

REPO = Path(__file__).resolve().parents[1]
WRAPPER = """#!{python}
import sys
sys.path.insert(0, {tree!r})
from service.cli import main
sys.exit(main())
"""


def base_bin(work: Path, rev: str) -> Path:
    """A bin dir whose `pocketca` runs the base commit's code (a worktree) with this venv's packages."""
    tree = work / "base-tree"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), rev], check=True, capture_output=True
    )
    bin_dir = work / "base-bin"
    bin_dir.mkdir()
    (bin_dir / "pocketca").write_text(WRAPPER.format(python=sys.executable, tree=str(tree)))
    (bin_dir / "pocketca").chmod(0o755)
    for tool in ("py-spy", "uvicorn", "python"):
        if (VENV_BIN / tool).exists():
            (bin_dir / tool).symlink_to(VENV_BIN / tool)
    return bin_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the earlier commit (anything git rev-parse takes)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    check_tools()
    work = Path(tempfile.mkdtemp(prefix="pocketca-ab-"))
    procs = Processes()
    this_bin = VENV_BIN
    try:
        bins = {"base": base_bin(work, args.base), "this": this_bin}
        pems, spkis = make_csrs(N_CSRS)
        bodies = work / "bodies.jsonl"
        write_bodies(bodies, "csr", pems)
        (work / "samples").mkdir()
        servers: dict[str, CaSetup] = {}
        for name, bin_dir in bins.items():
            data = work / f"ca-{name}"
            server, _ = start_pocketca_ready(procs, data, free_port(), work, f"pocketca-{name}", bin_dir)
            token = (data / "admin.token").read_text().strip()
            servers[name] = CaSetup("p256", data, server, server, token, (data / "ca.pem").read_bytes())
        clients = {}
        for name, ca in servers.items():
            (work / name).mkdir()
            clients[name] = client_certificate(ca, work / name)
        figures: dict[str, dict[str, list[float]]] = {
            n: {"rps": [], "cpu": [], "p99": [], "w": [], "wus": []} for n in servers
        }

        def issue(ca: CaSetup, seconds: int, tag: str) -> IssueRun:
            url = f"https://127.0.0.1:{ca.pocketca.port}/csr"
            return issuance_run(
                ca.pocketca, "pocketca", url, 8, 2, seconds, bodies, ca.token, work / "samples", tag, spkis, ca.ca_pem
            )

        for name, ca in servers.items():
            issue(ca, 2, f"warm-{name}")
        for r in range(args.runs):
            order = list(servers) if r % 2 == 0 else list(reversed(servers))
            for name in order:
                x = issue(servers[name], args.seconds, f"{name}-{r}")
                figures[name]["rps"].append(x.rps)
                figures[name]["cpu"].append(x.cpu_ms_per_cert)
                figures[name]["p99"].append(x.p99_ms)
                log(
                    f"run {r + 1} {name}: POST /csr {x.rps:.0f} req/s, {x.cpu_ms_per_cert:.2f} ms CPU/cert, "
                    f"p99 {x.p99_ms:.0f} ms, bad {x.bad}"
                )
            for name in order:
                cert, key = clients[name]
                k = keepalive_run(servers[name].pocketca, args.seconds, cert, key, servers[name].data_dir / "ca.pem")
                figures[name]["w"].append(k.rate)
                figures[name]["wus"].append(k.cpu_us)
                log(f"run {r + 1} {name}: /whoami {k.rate:.0f} req/s, {k.cpu_us:.0f} µs CPU/req, errors {k.errors}")
        for name, ca in servers.items():  # start-up on an existing data dir: each side restarted in turn
            procs.stop(ca.pocketca)
            figures[name]["up"] = []
        for r in range(args.runs):
            for name in list(servers) if r % 2 == 0 else list(reversed(servers)):
                server, seconds = start_pocketca_ready(
                    procs, servers[name].data_dir, free_port(), work, f"restart-{name}-{r}", bins[name]
                )
                procs.stop(server)
                figures[name]["up"].append(seconds)
                log(f"run {r + 1} {name}: start-up to healthy {seconds:.2f} s")
        med = {n: {k: statistics.median(v) for k, v in f.items()} for n, f in figures.items()}
        b, t = med["base"], med["this"]
        print(f"\n{args.runs} interleaved runs of {args.seconds} s, medians; base = {args.base}\n")
        print("| | base | this | this ÷ base |\n|---|---|---|---|")
        for label, key, unit in (
            ("POST /csr P-256 c=8", "rps", "req/s"),
            ("  server CPU per certificate", "cpu", "ms"),
            ("  p99", "p99", "ms"),
            ("GET /whoami keep-alive c=8", "w", "req/s"),
            ("  server CPU per request", "wus", "µs"),
            ("start-up on an existing data dir, to healthy", "up", "s"),
        ):
            print(f"| {label} ({unit}) | {b[key]:.2f} | {t[key]:.2f} | {t[key] / b[key]:.2f}x |")
    finally:
        procs.stop_all()
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(work / "base-tree")], capture_output=True
        )
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
