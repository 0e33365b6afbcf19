"""``perimeter``: run Perimeter's functions locally, show the demo, undo a remediation.

    perimeter invoke SgGuardFunction -e events/AuthorizeSecurityGroupIngress--world-ssh.json
    perimeter invoke -e events/AuthorizeSecurityGroupIngress--world-ssh.json   # route by rules
    perimeter invoke --embedded -e ...                                          # own moto server
    perimeter sweep [--embedded]                                                # review the region
    perimeter demo
    perimeter audit list | perimeter restore AUDIT_ID
    perimeter replay DIR | s3://bucket/prefix | --lake-results FILE   # history, dry run

``invoke`` honours ``AWS_ENDPOINT_URL`` and the usual credential variables; it creates the
template's supporting resources where they are missing, prints a JSON summary on stdout (the
handlers' logs go to stderr), exits 0 when the event was handled, no-op included, and 1 when a
function failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

DEFAULT_TEMPLATE = "template.yaml"


def _parameters(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--parameter-overrides expects Key=Value, got {pair!r}")
        out[key] = value
    return out


@contextlib.contextmanager
def _account(embedded: bool) -> Iterator[None]:
    if embedded:
        from perimeter_local.embedded import embedded_aws

        with embedded_aws():
            yield
    else:
        yield


def _session() -> Any:
    import boto3

    return boto3.session.Session()


def _read_event(path: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        event = json.loads(text)
    except (OSError, json.JSONDecodeError) as exc:
        raise SystemExit(f"perimeter: cannot read event {path}: {exc}") from exc
    if not isinstance(event, dict):
        raise SystemExit(f"perimeter: event {path} is not a JSON object")
    return event


def cmd_invoke(args: argparse.Namespace) -> int:
    from perimeter.events import wrap_in_envelope

    from perimeter_local.account import prepare
    from perimeter_local.invoke import invoke, route
    from perimeter_local.template import functions

    event = wrap_in_envelope(_read_event(args.event))
    with _account(args.embedded):
        session = _session()
        template_path = Path(args.template)
        template, resolver = prepare(
            session,
            template_path,
            stack_name=args.stack_name,
            parameters=_parameters(args.parameter_overrides),
        )
        specs = functions(template, resolver, template_path.parent)
        account, region = resolver.pseudo["AWS::AccountId"], resolver.pseudo["AWS::Region"]
        if args.function:
            chosen = [s for s in specs if s.logical_id == args.function]
            if not chosen:
                names = ", ".join(s.logical_id for s in specs)
                print(
                    f"perimeter: no function {args.function} in {template_path} (have: {names})",
                    file=sys.stderr,
                )
                return 2
            targets = [(chosen[0], None)]
        else:
            targets = list(route(specs, event))
        results = []
        for spec, rule in targets:
            res = invoke(spec, event, account=account, region=region)
            res["rule"] = rule
            results.append(res)
    summary: dict[str, Any] = {
        "event": args.event,
        "event_name": event.get("detail", {}).get("eventName"),
        "routed": args.function is None,
        "matched": [r["function"] for r in results],
        "results": results,
    }
    if not results:
        summary["note"] = "no rule of the template matches this event: EventBridge would not deliver it"
    print(json.dumps(summary, indent=2, default=str))
    failed = [r for r in results if not r["ok"]]
    for r in failed:
        print(f"perimeter: {r['function']} failed: {r['error']}", file=sys.stderr)
    return 1 if failed else 0


def scheduled_event(account: str, region: str, rule_name: str) -> dict[str, Any]:
    """The event an EventBridge schedule delivers (``Scheduled Event`` from ``aws.events``)."""
    import datetime as dt
    import uuid

    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account}:rule/{rule_name}"],
        "detail": {},
    }


def cmd_sweep(args: argparse.Namespace) -> int:
    from perimeter_local.account import prepare
    from perimeter_local.invoke import invoke
    from perimeter_local.template import functions

    with _account(args.embedded):
        session = _session()
        template_path = Path(args.template)
        template, resolver = prepare(
            session,
            template_path,
            stack_name=args.stack_name,
            parameters=_parameters(args.parameter_overrides),
        )
        account, region = resolver.pseudo["AWS::AccountId"], resolver.pseudo["AWS::Region"]
        if args.embedded:
            from perimeter_local.review_seed import seed_review

            seeded = seed_review(session, account, resolver)
            print(f"perimeter: embedded account seeded: {json.dumps(seeded)}", file=sys.stderr)
        spec = next((s for s in functions(template, resolver, template_path.parent) if s.schedules), None)
        if spec is None:
            print(f"perimeter: no scheduled function in {template_path}", file=sys.stderr)
            return 2
        event = scheduled_event(account, region, f"{args.stack_name}-sweep")
        res = invoke(spec, event, account=account, region=region)
    summary = {"function": spec.logical_id, "schedule": list(spec.schedules), **res}
    print(json.dumps(summary, indent=2, default=str))
    if not res["ok"]:
        print(f"perimeter: {spec.logical_id} failed: {res['error']}", file=sys.stderr)
        return 1
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from perimeter_local.demo import run_demo

    return run_demo(template=Path(args.template), as_json=args.json)


def _audit_adapter(args: argparse.Namespace) -> Any:
    from perimeter.adapters.audit import AuditAdapter

    table = args.table or f"{args.stack_name}-AuditTable"
    return AuditAdapter(_session().client("dynamodb"), table)


def cmd_audit(args: argparse.Namespace) -> int:
    for rec in _audit_adapter(args).scan():
        rules = ", ".join(r.get("rule_id", "?") for r in rec.get("rules", []))
        print(f"{rec['audit_id']}  {rec['time']}  {rec.get('action')}  {rec.get('group_id')}  {rules}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from perimeter_local.restore import restore

    record = _audit_adapter(args).get(args.audit_id)
    if record is None:
        print(f"perimeter: no audit record {args.audit_id}", file=sys.stderr)
        return 2
    print(json.dumps(restore(_session(), record), indent=2))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from perimeter_local.replay_cli import run_replay

    return run_replay(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="perimeter", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    inv = sub.add_parser("invoke", help="run a function (or every function whose rule matches) on an event")
    inv.add_argument("function", nargs="?", help="logical id, e.g. SgGuardFunction; omit to route by rules")
    inv.add_argument("-e", "--event", required=True, help="event JSON file ('-' for stdin)")
    inv.add_argument("--embedded", action="store_true", help="start an embedded moto server for this run")
    inv.add_argument("-t", "--template", default=DEFAULT_TEMPLATE)
    inv.add_argument("--stack-name", default="perimeter")
    inv.add_argument("--parameter-overrides", nargs="*", default=[], metavar="KEY=VALUE")
    inv.set_defaults(func=cmd_invoke)

    sw = sub.add_parser("sweep", help="review the whole region now, as the scheduled SweepFunction does")
    sw.add_argument(
        "--embedded",
        action="store_true",
        help="start an embedded moto server, seeded with a deployment worth reviewing",
    )
    sw.add_argument("-t", "--template", default=DEFAULT_TEMPLATE)
    sw.add_argument("--stack-name", default="perimeter")
    sw.add_argument("--parameter-overrides", nargs="*", default=[], metavar="KEY=VALUE")
    sw.set_defaults(func=cmd_sweep)

    demo = sub.add_parser(
        "demo", help="embedded account, a DeepSeek-R1 deployment, risky changes, Perimeter at work"
    )
    demo.add_argument("-t", "--template", default=DEFAULT_TEMPLATE)
    demo.add_argument("--json", action="store_true", help="print the outcome as JSON")
    demo.set_defaults(func=cmd_demo)

    from perimeter_local.replay_cli import add_arguments as add_replay_arguments

    rep = sub.add_parser(
        "replay", help="what Perimeter would have done over a CloudTrail history (dry run, no AWS writes)"
    )
    add_replay_arguments(rep)
    rep.set_defaults(func=cmd_replay)

    for name, helptext, func in (
        ("audit", "list the audit trail", cmd_audit),
        ("restore", "undo one remediation from its audit record", cmd_restore),
    ):
        p = sub.add_parser(name, help=helptext)
        if name == "restore":
            p.add_argument("audit_id")
        p.add_argument("--stack-name", default="perimeter")
        p.add_argument(
            "--table", help="audit table name (default: <stack>-AuditTable, as the runner names it)"
        )
        p.set_defaults(func=func)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
