#!/usr/bin/env python3
"""Benchmark: a warm container's memory over many events.

One warm SgGuard "container" (``perimeter_worker.py``, the project's venv) handles N world-open
ingress events against a moto server in its own process, each event checked as in
``event_path.py`` (remediated, rule gone), logs written as Lambda would. Every 50 events the
worker empties the audit and idempotency tables (untimed; see ``perimeter_worker.prune``: moto
copies whole tables on every transaction), and the server does not keep those copies (see
``fair._SERVER``). Prints the worker's
resident set size (VmRSS) after 200 events and after N. Target (issue 10): flat, i.e. RSS at N
within 5 % (and 8 MiB) of RSS at 200.

    .venv/bin/python bench/memory.py [--events 10000]
"""

from __future__ import annotations

import argparse
import sys
import time

from fair import log_dir, moto_process, perimeter_worker, verdict

FIRST = 200
GROWTH_LIMIT = 0.05
GROWTH_FLOOR_KIB = 8 * 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    args = parser.parse_args()
    started = time.monotonic()
    with moto_process() as endpoint, log_dir() as logs:
        worker = perimeter_worker(endpoint, logs)
        try:
            at_first = worker.ask(cmd="batch", n=FIRST, prune=True)["rss_kib"]
            marks = [(FIRST, at_first)]
            print(
                f"  {FIRST} events: RSS {at_first / 1024:.1f} MiB ({time.monotonic() - started:.0f} s)",
                flush=True,
            )
            done = FIRST
            while done < args.events:
                step = min(1000, args.events - done)
                done += step
                t0 = time.monotonic()
                marks.append((done, worker.ask(cmd="batch", n=step, prune=True)["rss_kib"]))
                rss, spent = marks[-1][1] / 1024, time.monotonic() - started
                ms = (time.monotonic() - t0) / step * 1000
                print(f"  {done} events: RSS {rss:.1f} MiB ({spent:.0f} s; {ms:.0f} ms/event)", flush=True)
        finally:
            worker.close()
    last = marks[-1][1]
    growth = last - at_first
    allowed = max(GROWTH_LIMIT * at_first, GROWTH_FLOOR_KIB)
    print(f"memory: one warm SgGuard container, {args.events} events on moto at {endpoint}")
    print("  RSS: " + ", ".join(f"{n} events {kib / 1024:.1f} MiB" for n, kib in marks))
    print(
        f"  RSS at {FIRST}: {at_first / 1024:.1f} MiB; at {args.events}: {last / 1024:.1f} MiB; "
        f"growth {growth / 1024:+.1f} MiB (goal <= {allowed / 1024:.1f} MiB); "
        f"{time.monotonic() - started:.0f} s"
    )
    misses = (
        [f"RSS grew {growth / 1024:.1f} MiB from {FIRST} to {args.events} events"] if growth > allowed else []
    )
    return verdict(misses, "memory (a warm container stays flat)")


if __name__ == "__main__":
    sys.exit(main())
