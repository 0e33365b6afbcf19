"""What every fair benchmark here shares: a moto server in its own process, workers driven over
pipes, percentiles, and a verdict line.

Both tools talk to ONE moto server that runs in a separate process (an in-process server would
save each round trip its loopback hop and skew the comparison), on 127.0.0.1 with a port the OS
picks. Each tool runs in its own interpreter (c7n pins its own boto3): Perimeter in the
project's venv, Cloud Custodian in ``.venv-c7n``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
C7N_PYTHON = Path(os.environ.get("C7N_PYTHON", ROOT / ".venv-c7n" / "bin" / "python"))

FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
}

# moto keeps every model object it ever builds in a per-class list (``instances_tracked``, read
# only by its web dashboard), including the deep copy of each table that every DynamoDB
# TransactWriteItems takes to roll back with: the server grew by a copy of the audit and
# idempotency tables per event (1.4 GiB after 5,000 events), its garbage collections and calls
# slowing with it; past 5,000 events one such copy failed ("dictionary changed size during
# iteration": another request wrote the table meanwhile, most likely botocore's retry of a call
# that had outlasted its read timeout). The server built here skips that
# bookkeeping; what it serves is unchanged (tests/integration/test_bench_moto_server.py).
UNTRACKED_MODELS = (
    "from moto.core.common_models import BaseModel as B;"
    "B.__new__=staticmethod(lambda cls,*a,**k:super(B,cls).__new__(cls))"
)
_SERVER = (
    "import logging,sys;logging.getLogger('werkzeug').setLevel(logging.ERROR);"
    + UNTRACKED_MODELS
    + ";from moto.server import ThreadedMotoServer as S;"
    "s=S(ip_address='127.0.0.1',port=0,verbose=False);s.start();"
    "h,p=s.get_host_and_port();print(f'http://{h}:{p}',flush=True);sys.stdin.read();s.stop()"
)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    env.update(FAKE_AWS)
    env.update(extra)
    return env


@contextlib.contextmanager
def moto_process() -> Iterator[str]:
    """A moto server in a child process; yields its endpoint URL."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=clean_env(),
        text=True,
    )
    try:
        assert proc.stdout is not None
        endpoint = proc.stdout.readline().strip()
        if not endpoint.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"moto server did not start (got {endpoint!r})")
        yield endpoint
    finally:
        with contextlib.suppress(Exception):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Worker:
    """A long-lived benchmark worker: one JSON line in, one JSON line out."""

    def __init__(self, name: str, argv: Sequence[str], endpoint: str, logfile: Path) -> None:
        self.name = name
        self.logfile = logfile
        self.proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=clean_env(AWS_ENDPOINT_URL=endpoint),
            text=True,
            cwd=ROOT,
        )
        self._read()  # {"ready": true}

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            tail = (
                self.logfile.read_text(errors="replace").splitlines()[-25:] if self.logfile.exists() else []
            )
            raise RuntimeError(f"{self.name} worker died; its log ends:\n" + "\n".join(tail))
        out: dict[str, Any] = json.loads(line)
        return out

    def ask(self, **cmd: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            assert self.proc.stdin is not None
            self.proc.stdin.write('{"cmd": "quit"}\n')
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def perimeter_worker(endpoint: str, logdir: Path) -> Worker:
    log = logdir / "perimeter.log"
    return Worker(
        "Perimeter", [sys.executable, str(BENCH / "perimeter_worker.py"), "serve", str(log)], endpoint, log
    )


def c7n_worker(endpoint: str, logdir: Path) -> Worker:
    if not C7N_PYTHON.exists():
        raise SystemExit(f"Cloud Custodian venv missing ({C7N_PYTHON}): run `make bench-deps`")
    log = logdir / "c7n.log"
    return Worker(
        "c7n", [str(C7N_PYTHON), str(BENCH / "c7n_worker.py"), "serve", endpoint, str(log)], endpoint, log
    )


@contextlib.contextmanager
def log_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="perimeter-bench-") as d:
        yield Path(d)


def median(xs: Sequence[float]) -> float:
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def p90(xs: Sequence[float]) -> float:
    """Nearest rank: the smallest sample at or above 90 % of the samples."""
    s = sorted(xs)
    return s[max(0, math.ceil(0.9 * len(s)) - 1)]


def verdict(misses: list[str], what: str) -> int:
    """The last line says whether every target was met; the exit status agrees."""
    if misses:
        print(f"MISSED {len(misses)} target(s) of {what}: " + "; ".join(misses))
        return 1
    print(f"OK: every target of {what} met")
    return 0
