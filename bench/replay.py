#!/usr/bin/env python3
"""Benchmark: ``perimeter replay`` throughput and memory over a generated CloudTrail history.

Writes a history of N records (default 1,000,000) the way a trail writes it — gzip files of
5,000 records under ``AWSLogs/<account>/CloudTrail/<region>/...`` in a temporary directory,
streamed, never held whole — with a trail's mix (about 82% reads and unrouted calls, failed
calls, and routed security-group, IAM, SageMaker and VPC calls, some violating). Then, in a
fresh process each so memory is the replay's own, it replays:

- the whole history: records/s on one core (process CPU time: parse gzip JSON, route,
  evaluate, tally — the pure part; no AWS call is made) and wall time, peak RSS;
- the first tenth of the files: its peak RSS, to show memory does not grow with the history.

The replay's per-control counts are checked against what the generator wrote. Exits 1 if
throughput is under the target (default 20,000 records/s), memory grows by more than 64 MiB
between the tenth and the whole, or the counts differ.

    .venv/bin/python bench/replay.py                 # 1,000,000 records
    .venv/bin/python bench/replay.py --records 100000 --keep /tmp/history
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_one(paths: list[str]) -> dict[str, object]:
    """Child process: replay ``paths`` and print figures as JSON."""
    from perimeter.policy import load_default_policy
    from perimeter_local.replay import replay
    from perimeter_local.replay_read import ReadStats, read_local
    from perimeter_local.replay_route import Router, template_routes

    router = Router(template_routes(ROOT / "template.yaml"))
    policy = load_default_policy()
    stats = ReadStats()

    def records():  # type: ignore[no-untyped-def]
        for p in paths:
            yield from read_local(Path(p), stats)

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu, wall = time.process_time(), time.perf_counter()
    tally = replay(records(), router, policy)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "records": tally.records,
        "routed": tally.routed,
        "files": stats.files,
        "cpu_s": cpu,
        "wall_s": wall,
        "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "rss_before_kib": rss_before,
        "events": {c: t.events for c, t in tally.controls.items()},
        "remediate": {c: t.remediate_events for c, t in tally.controls.items() if t.remediate_events},
    }


def child(paths: list[Path]) -> dict[str, object]:
    listing = json.dumps([str(p) for p in paths])
    out = subprocess.run(
        [sys.executable, __file__, "--child"],
        input=listing,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--per-file", type=int, default=5_000)
    parser.add_argument("--target", type=float, default=20_000, help="records/s on one core")
    parser.add_argument("--keep", type=Path, help="write the history here and keep it")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(json.loads(sys.stdin.read()))))
        return 0

    from perimeter_local.replay_read import local_files
    from perimeter_local.replay_synth import write_history

    root = args.keep or Path(tempfile.mkdtemp(prefix="perimeter-replay-bench-"))
    try:
        started = time.perf_counter()
        written = write_history(root, args.records, per_file=args.per_file)
        size = sum(p.stat().st_size for p in local_files(root))
        print(
            f"history: {written.records:,} records ({written.routed:,} routed) "
            f"in {written.files} gzip files, "
            f"{size / 2**20:,.0f} MiB, written in {time.perf_counter() - started:,.1f} s"
        )
        files = local_files(root)
        whole = child(files)
        tenth = child(files[: max(1, len(files) // 10)])
        rate_cpu = whole["records"] / whole["cpu_s"]  # type: ignore[operator]
        rate_wall = whole["records"] / whole["wall_s"]  # type: ignore[operator]
        growth = (whole["peak_rss_kib"] - tenth["peak_rss_kib"]) / 1024  # type: ignore[operator]
        print(
            f"replay: {whole['records']:,} records, {whole['routed']:,} routed, {whole['files']} files: "
            f"{whole['cpu_s']:.1f} s CPU, {whole['wall_s']:.1f} s wall"
        )
        print(
            f"throughput: {rate_cpu:,.0f} records/s on one core (CPU time); {rate_wall:,.0f} records/s wall"
        )
        print(
            f"peak RSS: {whole['peak_rss_kib'] / 1024:,.0f} MiB for the whole history, "
            f"{tenth['peak_rss_kib'] / 1024:,.0f} MiB for its first tenth ({tenth['records']:,} records): "
            f"{growth:+.0f} MiB"
        )
        expected_events = {c: n for c, n in written.events.items() if n}
        expected_remediate = {c: n for c, n in written.remediate.items() if n}
        counts_ok = whole["events"] == expected_events and whole["remediate"] == expected_remediate
        print(f"per-control events: {json.dumps(whole['events'], sort_keys=True)}")
        print(f"would remediate:    {json.dumps(whole['remediate'], sort_keys=True)}")
        failures = []
        if rate_cpu < args.target:
            failures.append(f"throughput {rate_cpu:,.0f} < target {args.target:,.0f} records/s")
        if growth > 64:
            failures.append(f"memory grew by {growth:.0f} MiB between a tenth and the whole history")
        if not counts_ok:
            failures.append(f"counts differ from what was written: {expected_events} / {expected_remediate}")
        for f in failures:
            print(f"FAIL: {f}")
        if not failures:
            print(f"OK: target {args.target:,.0f} records/s met, memory flat, counts as written")
        return 1 if failures else 0
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
