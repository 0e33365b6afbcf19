#!/usr/bin/env python3
"""Benchmark: what each import costs a cold start, and each handler module against ``import boto3``.

Each sample is a fresh interpreter started as Lambda starts one (``python -S``, sys.path = the
function's code, the layer, the packages), alternating the statements so machine noise hits
them alike; the figure is the median. Printed: a table of the imports a handler is made of,
each handler module (import only, as at ``import`` time outside Lambda's init), and each handler
with its init-phase work (``AWS_LAMBDA_INITIALIZATION_TYPE`` set: clients built, policy loaded),
which is what a SnapStart snapshot holds. Target (issue 10): a handler module <= 1.5x
``import boto3``.

    .venv/bin/python bench/cold_import.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import sysconfig
from pathlib import Path

from fair import verdict

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.5
TIMER = (
    "import sys,time;sys.path[:0]={paths!r};t=time.perf_counter();{stmt};"
    "sys.stdout.write(str((time.perf_counter()-t)*1000))"
)
ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "PERIMETER_AUDIT_TABLE": "audit",
    "PERIMETER_IDEMPOTENCY_TABLE": "idempotency",
    "PERIMETER_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:t",
    "PATH": "/usr/bin:/bin",
}
#: The pieces a handler is made of, cheapest first (each in its own fresh interpreter).
PARTS = [
    ("yaml (policy parser)", "import yaml"),
    ("botocore session + client", "import botocore.session, botocore.client"),
    ("boto3", "import boto3"),
    ("Powertools Logger + Metrics", "import perimeter.core.telemetry"),
    (
        "perimeter pure core (decide, report)",
        "import perimeter.security_groups.evaluate, perimeter.core.report",
    ),
    ("perimeter.security_groups.service (all it imports)", "import perimeter.security_groups.service"),
    (
        "perimeter.core.runtime + once + adapters",
        "import perimeter.core.runtime, perimeter.core.once, perimeter.adapters.ec2",
    ),
]


def sample(stmt: str, paths: list[str], *, init: bool = False) -> float:
    env = dict(ENV, AWS_LAMBDA_INITIALIZATION_TYPE="on-demand") if init else ENV
    out = subprocess.run(
        [sys.executable, "-S", "-c", TIMER.format(paths=paths, stmt=stmt)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return float(out.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    site = sysconfig.get_paths()["purelib"]
    layer = str(ROOT / "layers" / "perimeter")
    base_paths = [layer, site]
    handlers = sorted(p.parent for p in (ROOT / "functions").glob("*/app.py"))
    jobs: list[tuple[str, str, list[str], bool]] = [
        ("import boto3 (baseline)", "import boto3", base_paths, False)
    ]
    jobs += [(f"  {name}", stmt, base_paths, False) for name, stmt in PARTS]
    for h in handlers:
        jobs.append((f"{h.name}/app.py", "import app", [str(h), *base_paths], False))
        jobs.append((f"{h.name}/app.py + init (clients, policy)", "import app", [str(h), *base_paths], True))
    samples: dict[str, list[float]] = {name: [] for name, *_ in jobs}
    for _ in range(args.runs):
        for name, stmt, paths, init in jobs:
            samples[name].append(sample(stmt, paths, init=init))
    med = {name: statistics.median(xs) for name, xs in samples.items()}
    base = med["import boto3 (baseline)"]
    print(f"cold imports: median of {args.runs} fresh interpreters each (python -S, Lambda-like sys.path)")
    for name, *_ in jobs:
        print(f"  {name:<48} {med[name]:7.0f} ms  {med[name] / base:5.2f}x boto3")
    worst = max(med[f"{h.name}/app.py"] / base for h in handlers)
    print(f"worst handler module: {worst:.2f}x import boto3 (goal <= {TARGET}x)")
    misses = [f"a handler module imports in {worst:.2f}x boto3's time"] if worst > TARGET else []
    return verdict(misses, f"cold import (handler module <= {TARGET}x import boto3)")


if __name__ == "__main__":
    sys.exit(main())
