#!/usr/bin/env python3
"""Run the Cloud Custodian baseline (bench/c7n_baseline.py) against a moto server.

Runs with the main virtual environment (moto[server], boto3).  Cloud Custodian
lives in its own venv (.venv-c7n, it pins its own boto3), so the baseline runs
as a subprocess with that venv's interpreter and talks to the moto server over
loopback HTTP.  Perimeter's benchmark calls ``run_c7n_baseline`` with the
endpoint of the moto server it uses itself, so both tools are measured against
the same server; run as a script, this module starts a throwaway server.

    .venv/bin/python bench/c7n_against_moto.py --events 200 [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
BASELINE_SCRIPT = BENCH_DIR / "c7n_baseline.py"
# Overridable for a venv kept elsewhere; the default is what `make bench-deps` builds.
C7N_PYTHON = Path(os.environ.get("C7N_PYTHON", REPO_ROOT / ".venv-c7n" / "bin" / "python"))


class C7nVenvMissing(RuntimeError):
    """The Cloud Custodian virtual environment is not installed."""


class C7nBaselineFailed(RuntimeError):
    """The baseline subprocess failed or printed no JSON result."""


def _check_c7n_venv() -> None:
    if not C7N_PYTHON.exists():
        raise C7nVenvMissing(
            f"Cloud Custodian venv not found ({C7N_PYTHON}). Run `make bench-deps` "
            "(it creates .venv-c7n from bench/requirements-c7n.txt)."
        )
    probe = subprocess.run(
        [str(C7N_PYTHON), "-c", "import c7n.handler"], check=False, capture_output=True, text=True
    )
    if probe.returncode != 0:
        raise C7nVenvMissing(
            f"{C7N_PYTHON} cannot import c7n ({probe.stderr.strip().splitlines()[-1:]}). "
            "Run `make bench-deps`."
        )


def _subprocess_env(region: str) -> dict[str, str]:
    """Environment for the baseline: fake credentials, no profile, no real keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": region,
            # Don't let a stray PYTHONPATH mix the main venv's boto3 into c7n's.
            "PYTHONPATH": "",
        }
    )
    return env


def run_c7n_baseline(
    endpoint: str,
    events: int = 200,
    *,
    region: str = "us-east-1",
    warmup: int = 1,
    timeout: float | None = 1800.0,
) -> dict[str, Any]:
    """Benchmark Cloud Custodian's cloudtrail-mode policy against ``endpoint``.

    ``endpoint`` is a running moto server on loopback (e.g. the one Perimeter's
    benchmark uses).  Returns the JSON object the baseline prints on its last
    stdout line: ``tool``, ``version``, ``events``, ``median_ms``, ``p90_ms``,
    ``mean_ms``, ``calls_per_event`` (by ``service.Operation``), ``samples_ms``...

    Raises ``C7nVenvMissing`` if .venv-c7n is not installed, and
    ``C7nBaselineFailed`` if the run fails (including when c7n did not revoke
    the rule or skipped an action, which the baseline treats as fatal).
    """
    _check_c7n_venv()
    cmd = [
        str(C7N_PYTHON),
        str(BASELINE_SCRIPT),
        "--endpoint",
        endpoint,
        "--events",
        str(events),
        "--warmup",
        str(warmup),
        "--region",
        region,
        "--json",
    ]
    try:
        proc = subprocess.run(
            cmd,
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_subprocess_env(region),
            cwd=str(REPO_ROOT),
        )
    except subprocess.TimeoutExpired as exc:
        raise C7nBaselineFailed(f"c7n baseline timed out after {timeout} s") from exc
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-20:])
        raise C7nBaselineFailed(f"c7n baseline exited {proc.returncode}:\n{tail}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError) as exc:
        raise C7nBaselineFailed(f"no JSON result on the last stdout line:\n{proc.stdout}") from exc
    return result


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 with an OS-chosen free port; yields its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Cloud Custodian baseline on a fresh moto server")
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--json", action="store_true", help="print the raw JSON result last")
    args = parser.parse_args(argv)

    # Werkzeug logs every request to stderr; that is noise here, not workload.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with moto_server() as endpoint:
        result = run_c7n_baseline(endpoint, args.events, region=args.region, warmup=args.warmup)

    calls = ", ".join(f"{op} {n:g}" for op, n in result["calls_per_event"].items())
    print(f"Cloud Custodian {result['version']}: {result['events']} events on {endpoint}")
    print(
        f"  median {result['median_ms']:.1f} ms  p90 {result['p90_ms']:.1f} ms  "
        f"mean {result['mean_ms']:.1f} ms"
    )
    print(f"  AWS calls/event {result['calls_per_event_total']:g}: {calls}")
    if args.json:
        print(json.dumps(result, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
