#!/usr/bin/env python3
"""Benchmark: Perimeter's event path beside Cloud Custodian's, interleaved event by event.

The fair harness (issue 7, item 7): one moto server in its own process serves both tools; each
tool runs warm in its own interpreter (Perimeter: the SgGuard handler module; Cloud Custodian
0.9.53: its Lambda entry ``dispatch_event`` with a cloudtrail-mode policy "ingress 0.0.0.0/0 ->
remove-permissions + post-finding + notify"); both write their logs as Lambda would (stdout and
stderr to a log file). Events alternate: P,C then C,P, so drift and noise hit both alike. Each
event opens a fresh world-open tcp/22 rule (untimed), times the handler, and checks (untimed) the
rule is gone. Every 50 events Perimeter's worker empties the audit and idempotency tables
(untimed): moto copies a whole table on each TransactWriteItems, which DynamoDB does not.

Per run it prints, for both tools, the whole path (handler entry to return) and the exposure
window (handler entry to the revoke call returning), median and p90, and the ratios; plus
Perimeter's sequential AWS round trips up to the revoke. Targets (issue 10):
- whole path: Perimeter <= 1/8 of c7n's, median and p90;
- exposure window: at most 3 sequential round trips before the revoke returns.

    .venv/bin/python bench/event_path.py [--events 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import collections
import sys

from fair import c7n_worker, log_dir, median, moto_process, p90, perimeter_worker, verdict

WHOLE_TARGET = 1 / 8
DEPTH_TARGET = 3


def one_run(events: int, warmup: int) -> dict[str, object]:
    with moto_process() as endpoint, log_dir() as logs:
        ours, theirs = perimeter_worker(endpoint, logs), c7n_worker(endpoint, logs)
        try:
            for _ in range(warmup):  # cold clients, policy, first VPC read: not timed
                ours.ask(cmd="event")
                theirs.ask(cmd="event")
            p: list[dict] = []
            c: list[dict] = []
            for i in range(events):
                pair = (ours, theirs) if i % 2 == 0 else (theirs, ours)
                for w in pair:
                    # Every 50 events Perimeter's worker empties its tables first, untimed: moto
                    # copies a whole table on each TransactWriteItems; DynamoDB does not.
                    prune = w is ours and i % 50 == 49
                    (p if w is ours else c).append(w.ask(cmd="event", prune=prune))
        finally:
            ours.close()
            theirs.close()
        log_bytes = {w.name: w.logfile.stat().st_size for w in (ours, theirs) if w.logfile.exists()}
    return {"p": p, "c": c, "logs": log_bytes, "endpoint": endpoint}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200, help="timed events per tool per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()

    misses: list[str] = []
    medians, p90s = [], []
    for run in range(1, args.runs + 1):
        r = one_run(args.events, args.warmup)
        p, c = r["p"], r["c"]
        pw, cw = [x["ms"] for x in p], [x["ms"] for x in c]
        pe, ce = [x["exposure_ms"] for x in p], [x["exposure_ms"] for x in c]
        depth = collections.Counter(x["depth_to_revoke"] for x in p)
        calls = collections.Counter(n for x in p for n in x["calls"])
        ccalls = collections.Counter(n for x in c for n in x["calls"])
        rm, r90 = median(pw) / median(cw), p90(pw) / p90(cw)
        medians.append(rm)
        p90s.append(r90)
        print(f"run {run}: {args.events} events per tool, interleaved, moto server in its own process")
        print(f"  Perimeter calls/event: {dict((k, v / len(p)) for k, v in sorted(calls.items()))}")
        print(f"  c7n calls/event:       {dict((k, v / len(c)) for k, v in sorted(ccalls.items()))}")
        print(f"  log bytes written: {r['logs']}")
        print(
            f"  exposure window (entry -> revoke returned): Perimeter median {median(pe):.1f} ms "
            f"p90 {p90(pe):.1f} ms; c7n median {median(ce):.1f} ms p90 {p90(ce):.1f} ms; "
            f"ratio {median(pe) / median(ce):.3f}"
        )
        print(
            f"  sequential AWS round trips to the revoke (Perimeter): {dict(sorted(depth.items()))} "
            f"(goal <= {DEPTH_TARGET})"
        )
        print(
            f"  whole path: Perimeter median {median(pw):.1f} ms p90 {p90(pw):.1f} ms; "
            f"c7n median {median(cw):.1f} ms p90 {p90(cw):.1f} ms"
        )
        print(f"  ratio run {run}: median {rm:.3f}, p90 {r90:.3f} (goal <= {WHOLE_TARGET:.3f})")
        if max(depth) > DEPTH_TARGET:
            misses.append(f"run {run}: {max(depth)} sequential round trips before the revoke (goal <= 3)")
        if rm > WHOLE_TARGET or r90 > WHOLE_TARGET:
            misses.append(f"run {run}: whole-path ratio median {rm:.3f} / p90 {r90:.3f} > 1/8")
    print(
        f"whole-path ratio over {args.runs} run(s): median {min(medians):.3f}-{max(medians):.3f}, "
        f"p90 {min(p90s):.3f}-{max(p90s):.3f} (goal <= {WHOLE_TARGET:.3f})"
    )
    return verdict(misses, "the event path (whole path <= 1/8 of c7n; <= 3 round trips to the revoke)")


if __name__ == "__main__":
    sys.exit(main())
