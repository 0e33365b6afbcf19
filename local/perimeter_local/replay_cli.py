"""The ``perimeter replay`` command line: choose the history, the template, the policy.

perimeter replay tests/corpus_data/cloudtrail            # a directory of .json / .json.gz
perimeter replay s3://my-trail-bucket/AWSLogs/123456789012/CloudTrail/us-east-1/2026/
perimeter replay --lake-results page-1.json page-2.json  # CloudTrail Lake / Athena rows
perimeter replay --print-lake-sql                        # the query selecting routed calls
perimeter replay DIR --json --known-good 'arn:aws:sts::*:assumed-role/Deployer/*'
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_TEMPLATE = "template.yaml"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("history", nargs="?", help="directory or file of trail log files, or s3://bucket/prefix")
    p.add_argument(
        "--lake-results",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="CloudTrail Lake GetQueryResults pages or JSON-lines rows (see README)",
    )
    p.add_argument(
        "-t", "--template", default=DEFAULT_TEMPLATE, help="the SAM template whose rules route the history"
    )
    p.add_argument(
        "--stack-name", default="perimeter", help="whose own roles' calls are ignored (loop guard)"
    )
    p.add_argument("--policy", type=Path, help="policy YAML (default: the packaged default policy)")
    p.add_argument(
        "--known-good",
        action="append",
        default=[],
        metavar="ARN_GLOB",
        help="actors whose changes are known good: the exemption snippet covers exactly these",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--top", type=int, default=20, help="actors and resources printed per control (text)")
    p.add_argument(
        "--print-lake-sql", action="store_true", help="print the CloudTrail Lake SQL selecting routed calls"
    )
    p.add_argument("--print-athena-sql", metavar="TABLE", help="the same query for Athena's CloudTrail TABLE")
    p.add_argument(
        "--store", default="<event-data-store-id>", help="event data store id for --print-lake-sql"
    )
    p.add_argument(
        "--start", default="", help="eventtime lower bound for the SQL, e.g. '2026-10-01 00:00:00'"
    )
    p.add_argument("--end", default="", help="eventtime upper bound (exclusive) for the SQL")


def _policy(path: Path | None) -> Any:
    from perimeter.policy import load_default_policy, load_policy_text

    if path is None:
        return load_default_policy()
    return load_policy_text(path.read_text(encoding="utf-8"))


def run_replay(args: argparse.Namespace) -> int:
    from perimeter_local.replay import Progress, exemption_snippet, lake_sql, render, replay, to_json
    from perimeter_local.replay_read import HistoryError, ReadStats, read_lake_results, read_local, read_s3
    from perimeter_local.replay_route import Router, self_role_pattern, template_routes

    router = Router(template_routes(Path(args.template)))
    if args.print_lake_sql or args.print_athena_sql:
        print(
            lake_sql(
                router, store=args.store, start=args.start, end=args.end, athena_table=args.print_athena_sql
            )
        )
        return 0
    stats = ReadStats()
    if args.lake_results:
        source = ", ".join(str(p) for p in args.lake_results)
        records = read_lake_results(args.lake_results, stats)
    elif args.history and args.history.startswith("s3://"):
        import boto3

        source = args.history
        records = read_s3(boto3.session.Session().client("s3"), args.history, stats)
    elif args.history:
        source = args.history
        records = read_local(Path(args.history), stats)
    else:
        print("perimeter replay: give a history (DIR, FILE or s3://...) or --lake-results", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        tally = replay(
            records,
            router,
            _policy(args.policy),
            stats=stats,
            progress=Progress(),
            self_roles=self_role_pattern(Path(args.template), args.stack_name),
        )
    except HistoryError as exc:
        print(f"perimeter replay: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - started
    exemptions, silenced = exemption_snippet(tally, known_good=args.known_good)
    report = to_json(
        tally, source=source, seconds=seconds, stats=stats, exemptions=exemptions, silenced=silenced
    )
    print(json.dumps(report, indent=2) if args.json else render(report, top=args.top))
    return 0
