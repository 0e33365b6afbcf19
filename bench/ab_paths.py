#!/usr/bin/env python3
"""Benchmark: two versions of Perimeter's event path, interleaved event by event (an A/B).

What one change to the event path is worth, measured apart from Cloud Custodian: the SgGuard
worker of ``bench/event_path.py`` run from two source trees, ``--before`` (a git revision,
exported to a temporary directory with ``git archive``) and this checkout, each against a moto
server of its own (they create the same tables), events alternating A,B then B,A so drift and
load hit both alike. Prints each side's calls per event, median and p90, and the median of the
per-pair ratios B/A (below 1: this checkout is faster). Nothing here is a target: a tool for
saying what moved a figure.

    .venv/bin/python bench/ab_paths.py --before main [--events 300] [--runs 2]
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fair import ROOT, Worker, log_dir, median, moto_process, p90


@contextlib.contextmanager
def exported(rev: str) -> Iterator[Path]:
    """The tree of ``rev`` in a temporary directory (the worker finds its code beside itself)."""
    with tempfile.TemporaryDirectory(prefix="perimeter-ab-") as d:
        archive = Path(d) / "tree.tar"
        subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), rev], check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(Path(d) / "tree", filter="data")
        yield Path(d) / "tree"


def worker(tree: Path, endpoint: str, log: Path) -> Worker:
    script = tree / "bench" / "perimeter_worker.py"
    return Worker(str(tree), [sys.executable, str(script), "serve", str(log)], endpoint, log)


def one_run(before: Path, events: int, warmup: int = 5) -> tuple[list[dict], list[dict]]:
    with moto_process() as ea, moto_process() as eb, log_dir() as logs:
        a, b = worker(before, ea, logs / "a.log"), worker(ROOT, eb, logs / "b.log")
        try:
            for _ in range(warmup):
                a.ask(cmd="event")
                b.ask(cmd="event")
            ra: list[dict] = []
            rb: list[dict] = []
            for i in range(events):
                for w in (a, b) if i % 2 == 0 else (b, a):
                    # both empty their tables every 50 events, untimed (see event_path.py)
                    (ra if w is a else rb).append(w.ask(cmd="event", prune=i % 50 == 49))
        finally:
            a.close()
            b.close()
    return ra, rb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="git revision to compare this checkout with")
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    with exported(args.before) as before:
        for run in range(1, args.runs + 1):
            ra, rb = one_run(before, args.events)
            print(f"run {run}: {args.events} events per side, interleaved")
            for name, rs in ((args.before, ra), ("this checkout", rb)):
                ms = [r["ms"] for r in rs]
                print(f"  {name}: calls/event {len(rs[0]['calls'])} {rs[0]['calls']}")
                print(f"  {name}: median {median(ms):.1f} ms, p90 {p90(ms):.1f} ms")
            ratios = [y["ms"] / x["ms"] for x, y in zip(ra, rb, strict=True)]
            print(f"  this checkout / {args.before}, median of the per-pair ratios: {median(ratios):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
