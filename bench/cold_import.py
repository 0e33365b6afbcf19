#!/usr/bin/env python3
"""Benchmark: cold import of each handler module vs ``import boto3``, in one run.

Each sample is a fresh interpreter (a cold container imports exactly once), alternating the
baseline and the handlers so machine noise hits both alike. Target: handler <= 1.5x boto3.

    .venv/bin/python bench/cold_import.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMER = "import time,sys;t=time.perf_counter();{stmt};sys.stdout.write(str((time.perf_counter()-t)*1000))"


def sample(stmt: str, cwd: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-c", TIMER.format(stmt=stmt)],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        env={
            "PYTHONPATH": str(ROOT / "layers/perimeter"),
            "AWS_REGION": "us-east-1",
            "PATH": "/usr/bin:/bin",
        },
    )
    return float(out.stdout)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    handlers = sorted(p.parent for p in (ROOT / "functions").glob("*/app.py"))
    base: list[float] = []
    results: dict[str, list[float]] = {}
    for h in handlers:
        results[h.name] = []
        results[h.name + " + boto3"] = []
    for _ in range(args.runs):
        base.append(sample("import boto3", ROOT))
        for h in handlers:
            results[h.name].append(sample("import app", h))
            # The first event needs boto3 too: the handler defers it, so count it as well.
            results[h.name + " + boto3"].append(sample("import app, boto3", h))
    b = statistics.median(base)
    print(f"import boto3: median {b:.0f} ms over {args.runs} fresh interpreters")
    worst = 0.0
    for name, xs in results.items():
        m = statistics.median(xs)
        worst = max(worst, m / b)
        print(
            f"import {name.replace(' +', '/app.py +') if '+' in name else name + '/app.py'}: "
            f"median {m:.0f} ms = {m / b:.2f}x boto3"
        )
    print(f"worst ratio {worst:.2f}x (target <= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
