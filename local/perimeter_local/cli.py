"""``perimeter``: run Perimeter's functions locally, show the demo, undo a remediation.

    perimeter invoke SgGuardFunction -e events/AuthorizeSecurityGroupIngress--world-ssh.json
    perimeter invoke -e events/AuthorizeSecurityGroupIngress--world-ssh.json   # route by rules
    perimeter invoke --embedded -e ...                                          # own moto server
    perimeter sweep [--embedded]                                                # review the region
    perimeter demo
    perimeter audit list | perimeter restore AUDIT_ID | perimeter restore FINDING_ID
    perimeter replay DIR | s3://bucket/prefix | --lake-results FILE   # history, dry run
    eval "$(perimeter local up)"  ...  perimeter local down                  # a lasting local AWS

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
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from perimeter_local.errors import UsageError, explain

DEFAULT_TEMPLATE = "template.yaml"
#: Exit code when the embedded AWS cannot serve what a sample needs (not a Perimeter failure).
EXIT_UNSUPPORTED = 3


def _parameters(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"--parameter-overrides expects Key=Value, got {pair!r}")
        out[key] = value
    return out


@contextlib.contextmanager
def _account(embedded: bool, event: dict[str, Any] | None = None) -> Iterator[None]:
    if embedded:
        from perimeter_local.embedded import embedded_aws

        # A sample (invoke) may need what moto lacks: the runner's extensions, named when used.
        with embedded_aws(
            managed_policies="arn:aws:iam::aws:policy/" in json.dumps(event), extensions=event is not None
        ):
            yield
    else:
        yield


@cache
def _session_for(endpoint: str | None, region: str | None) -> Any:
    import boto3

    # One session per account and process: botocore then loads each service model once.
    return boto3.session.Session()


def _session() -> Any:
    import os

    from botocore.exceptions import NoRegionError

    session = _session_for(os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("AWS_DEFAULT_REGION"))
    if not session.region_name:
        # Without one, STS would go to its global endpoint and fail on the network instead.
        raise NoRegionError()
    return session


def _read_event(path: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read event {path}: {exc.strerror or exc}") from exc
    try:
        event = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"event {path} is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): "
            "pass an EventBridge event file, e.g. one from events/"
        ) from exc
    if not isinstance(event, dict):
        raise UsageError(
            f"event {path} is not a JSON object: pass an EventBridge event file, e.g. one from events/"
        )
    if "detail" in event and not isinstance(event["detail"], dict):
        shown = json.dumps(event["detail"])
        raise UsageError(
            f'event {path} has "detail": {shown[:40]}: an EventBridge event carries the CloudTrail record '
            'as an object in "detail"'
        )
    return event


def _is_local(endpoint: str | None) -> bool:
    host = urlparse(endpoint or "").hostname
    return host in ("127.0.0.1", "localhost", "::1")


def _after(session: Any, staged: Any) -> dict[str, Any]:
    """What the account shows once the handlers ran, read back through the API."""
    ec2 = session.client("ec2")
    groups = {}
    for gid in dict.fromkeys(staged.groups):
        rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])[
            "SecurityGroupRules"
        ]
        groups[gid] = sorted(_rule_text(r) for r in rules)
    findings = session.client("securityhub").get_findings(MaxResults=100)["Findings"]
    from perimeter.adapters.audit import AuditAdapter

    audit = AuditAdapter(session.client("dynamodb"), _audit_table_name("perimeter")).scan()
    flow_logs = {f["FlowLogId"]: f["ResourceId"] for f in ec2.describe_flow_logs().get("FlowLogs", [])}
    return {
        "security_group_rules": groups,
        "flow_logs": flow_logs,
        "findings": [
            {
                "control": f["GeneratorId"],
                "resource": f["Resources"][0]["Id"].rsplit("/", 1)[-1],
                "compliance": f.get("Compliance", {}).get("Status"),
                "record_state": f.get("RecordState"),
                # a reviewer's decision (the undo's note), shown only where there is one
                **(
                    {"workflow": f.get("Workflow", {}).get("Status"), "note": f["Note"].get("Text")}
                    if f.get("Note")
                    else {}
                ),
            }
            for f in findings
        ],
        "audit": [{"audit_id": r["audit_id"], "action": r.get("action")} for r in audit],
    }


def _rule_text(rule: dict[str, Any]) -> str:
    proto = "all" if rule.get("IpProtocol") == "-1" else f"{rule.get('IpProtocol')}/{rule.get('FromPort')}"
    peer = (
        rule.get("CidrIpv4")
        or rule.get("CidrIpv6")
        or rule.get("PrefixListId")
        or (rule.get("ReferencedGroupInfo") or {}).get("GroupId")
    )
    direction, way = ("egress", "to") if rule.get("IsEgress") else ("ingress", "from")
    return f"{direction} {proto} {way} {peer}"


def _stage(
    args: argparse.Namespace,
    session: Any,
    specs: list[Any],
    event: dict[str, Any],
    *,
    account: str,
    region: str,
) -> Any:
    """Build the sample's world in the local account (``stage.py``)."""
    from dataclasses import replace

    from perimeter_local.invoke import invoke, route
    from perimeter_local.stage import stage

    def run_first(earlier: dict[str, Any], *, dry_run: bool = False) -> list[dict[str, Any]]:
        # An earlier call the sample's state depends on (e.g. the grant a fix removes), run
        # through the routed handlers so the account holds its findings; in dry run when the
        # sample needs that call's finding left open.
        dry = {"PERIMETER_DRY_RUN": "true"} if dry_run else {}
        return [
            invoke(replace(s, environment={**s.environment, **dry}), earlier, account=account, region=region)
            for s, _ in route(specs, earlier)
        ]

    return stage(session, event, run_first=run_first, extended=args.embedded)


def cmd_invoke(args: argparse.Namespace) -> int:
    import os

    from perimeter.core.events import wrap_in_envelope

    from perimeter_local.account import prepare
    from perimeter_local.invoke import invoke, route
    from perimeter_local.moto_ext import describe, forget_served, served
    from perimeter_local.template import functions

    event = wrap_in_envelope(_read_event(args.event))
    staging = args.embedded or args.stage
    with _account(args.embedded, event):
        if args.stage and not _is_local(os.environ.get("AWS_ENDPOINT_URL")):
            raise UsageError(
                "--stage builds the sample's resources, so it runs only against a local account: "
                'eval "$(perimeter local up)" first, or use --embedded'
            )
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
        staged = None
        forget_served()
        if staging:
            staged = _stage(args, session, specs, event, account=account, region=region)
            if staged.unsupported:
                print(
                    f"perimeter: the local AWS (moto) does not implement {staged.unsupported}, so "
                    f"{Path(args.event).name} cannot run against it; `perimeter invoke --embedded` "
                    "serves it with a stand-in, or run it against AWS",
                    file=sys.stderr,
                )
                return EXIT_UNSUPPORTED
            event = staged.event
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
        after = _after(session, staged) if staged is not None else None
        extensions = describe(served())
    summary: dict[str, Any] = {
        "event": args.event,
        "event_name": event.get("detail", {}).get("eventName"),
        "routed": args.function is None,
        "matched": [r["function"] for r in results],
        "results": results,
    }
    if staged is not None:
        summary["staged"] = {"ids": staged.ids, "created": staged.created, "earlier": staged.earlier}
        summary["after"] = after
    if extensions:
        # Answers moto could not give came from the runner's extensions: said, never hidden.
        summary["moto_extensions"] = extensions
    if not results:
        summary["note"] = "no rule of the template matches this event: EventBridge would not deliver it"
    print(json.dumps(summary, indent=2, default=str))
    for line in extensions:
        print(f"perimeter: {line} (local/perimeter_local/moto_ext.py)", file=sys.stderr)
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


def _audit_table_name(stack_name: str) -> str:
    return f"{stack_name}-AuditTable"


def _audit_adapter(args: argparse.Namespace) -> Any:
    from perimeter.adapters.audit import AuditAdapter

    table = args.table or _audit_table_name(args.stack_name)
    return AuditAdapter(_session().client("dynamodb"), table)


def cmd_audit(args: argparse.Namespace) -> int:
    from botocore.exceptions import ClientError

    try:
        records = list(_audit_adapter(args).scan())
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        table = args.table or _audit_table_name(args.stack_name)
        print(
            f"perimeter: no audit table {table} in this account (nothing was remediated here yet)",
            file=sys.stderr,
        )
        return 0
    for rec in sorted(records, key=lambda r: str(r.get("time"))):
        rules = ", ".join(r.get("rule_id", "?") for r in rec.get("rules", []))
        target = rec.get("group_id") or rec.get("vpc_id") or ""
        print(f"{rec['audit_id']}  {rec['time']}  {rec.get('action')}  {target}  {rules}".rstrip())
    print(f"{len(records)} audit record(s)", file=sys.stderr)
    return 0


def cmd_local(args: argparse.Namespace) -> int:
    from perimeter_local import localserver

    if args.action == "up":
        state = localserver.up(region=args.region)
        print(localserver.exports(state), end="")
        print(
            f"# local AWS (moto) at {state['endpoint']}, pid {state['pid']}; "
            'stop it with: eval "$(perimeter local down)"',
            file=sys.stderr,
        )
        return 0
    if args.action == "status":
        state = localserver.read_state()
        if state is None:
            print("no local AWS running", file=sys.stderr)
            return 1
        print(localserver.exports(state), end="")
        return 0
    stopped = localserver.down()
    if stopped is None:
        print("no local AWS running", file=sys.stderr)
    else:
        print(f"stopped the local AWS at {stopped['endpoint']} (pid {stopped['pid']})", file=sys.stderr)
        print("unset AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION")
    return 0


def restore_session(
    session: Any, record: Mapping[str, Any], *, member_role: str, external_id: str | None = None
) -> Any:
    """The session that restores ``record``: the caller's own when the record is of the caller's
    account (and region), else the member account's remediation role (organization mode:
    ``<member_role>-<region>``, assumed with the external id), in the record's region. The
    member stack lets the security account's operator role assume it (OperatorPrincipalArn)."""
    import boto3
    from perimeter.core.accounts import member_role_arn, partition_of, role_session_name

    account = str(record.get("account") or "")
    region = str(record.get("region") or session.region_name)
    own = session.client("sts").get_caller_identity()["Account"]
    if not account or account == own:
        return session if region == session.region_name else boto3.session.Session(region_name=region)
    kwargs: dict[str, Any] = {
        "RoleArn": member_role_arn(partition_of(region), account, member_role, region),
        "RoleSessionName": role_session_name(f"restore-{record.get('audit_id', '')}"),
    }
    if external_id:
        kwargs["ExternalId"] = external_id
    creds = session.client("sts").assume_role(**kwargs)["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=region,
    )


def _undo_runtime(args: argparse.Namespace) -> Any:
    """The UndoFunction's runtime, on this shell's credentials: the same code path."""
    from perimeter.core.runtime import Runtime, Settings

    session = _session()
    settings = Settings(
        region=str(session.region_name),
        account_id=None,
        audit_table=args.table or _audit_table_name(args.stack_name),
        idempotency_table=None,
        topic_arn=None,
        policy_parameter=None,
        dry_run=False,
        self_roles=frozenset(),
        exemptions_table=args.exemptions_table or f"{args.stack_name}-ExemptionsTable",
        exempt_days=args.days,
    )
    return Runtime(settings, session=session)


def cmd_restore_finding(args: argparse.Namespace) -> int:
    """``perimeter restore FINDING_ID``: what the Security Hub action does, from a terminal."""
    from perimeter.restore import undo

    rt = _undo_runtime(args)
    finding = undo.find_finding(rt.client("securityhub"), args.audit_id)
    if finding is None:
        print(f"perimeter: no Security Hub finding {args.audit_id}", file=sys.stderr)
        return 2
    actor = str(rt.client("sts").get_caller_identity().get("Arn"))
    outcome = undo.undo_finding(rt, finding, actor=actor)
    print(json.dumps(outcome, indent=2, default=str))
    return 0 if outcome["status"] in ("undone", "already-undone") else 1


def cmd_restore(args: argparse.Namespace) -> int:
    import os

    from perimeter.restore import RestoreError, restore

    if args.audit_id.startswith("perimeter/"):
        return cmd_restore_finding(args)
    record = _audit_adapter(args).get(args.audit_id)
    if record is None:
        print(f"perimeter: no audit record {args.audit_id}", file=sys.stderr)
        return 2
    try:
        session = restore_session(
            _session(),
            record,
            member_role=args.member_role,
            external_id=args.external_id or os.environ.get("PERIMETER_EXTERNAL_ID") or None,
        )
        outcome = restore(session, record)
    except RestoreError as exc:
        print(f"perimeter: {exc}", file=sys.stderr)
        return 2
    if outcome.get("group_id"):
        # Read back, so the person sees the rules are there again, not only that we asked.
        rules = session.client("ec2").describe_security_group_rules(
            Filters=[{"Name": "group-id", "Values": [outcome["group_id"]]}]
        )["SecurityGroupRules"]
        outcome["rules_now"] = sorted(_rule_text(r) for r in rules)
    print(json.dumps(outcome, indent=2))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from perimeter_local.replay_cli import run_replay

    return run_replay(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="perimeter", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    template_help = "the SAM template to read functions, rules and environment from (default: %(default)s)"
    stack_help = "stack name the runner names resources after (default: %(default)s)"

    inv = sub.add_parser("invoke", help="run a function (or every function whose rule matches) on an event")
    inv.add_argument("function", nargs="?", help="logical id, e.g. SgGuardFunction; omit to route by rules")
    inv.add_argument("-e", "--event", required=True, help="event JSON file ('-' for stdin)")
    inv.add_argument(
        "--embedded",
        action="store_true",
        help="run against a fresh moto server of this run's own, with the event's resources built first "
        "(what moto lacks is served by the runner's extensions, named in the output)",
    )
    inv.add_argument(
        "--stage",
        action="store_true",
        help="build the resources the event names before running it (local accounts only: `local up`)",
    )
    inv.add_argument("-t", "--template", default=DEFAULT_TEMPLATE, help=template_help)
    inv.add_argument("--stack-name", default="perimeter", help=stack_help)
    inv.add_argument(
        "--parameter-overrides",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="template parameters, as sam's --parameter-overrides (e.g. DryRun=true)",
    )
    inv.set_defaults(func=cmd_invoke)

    sw = sub.add_parser("sweep", help="review the whole region now, as the scheduled SweepFunction does")
    sw.add_argument(
        "--embedded",
        action="store_true",
        help="start an embedded moto server, seeded with a deployment worth reviewing",
    )
    sw.add_argument("-t", "--template", default=DEFAULT_TEMPLATE, help=template_help)
    sw.add_argument("--stack-name", default="perimeter", help=stack_help)
    sw.add_argument(
        "--parameter-overrides",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="template parameters, as sam's --parameter-overrides (e.g. DryRun=true)",
    )
    sw.set_defaults(func=cmd_sweep)

    demo = sub.add_parser(
        "demo", help="embedded account, a DeepSeek-R1 deployment, risky changes, Perimeter at work"
    )
    demo.add_argument("-t", "--template", default=DEFAULT_TEMPLATE, help=template_help)
    demo.add_argument("--json", action="store_true", help="print the outcome as JSON")
    demo.set_defaults(func=cmd_demo)

    from perimeter_local.replay_cli import add_arguments as add_replay_arguments

    rep = sub.add_parser(
        "replay", help="what Perimeter would have done over a CloudTrail history (dry run, no AWS writes)"
    )
    add_replay_arguments(rep)
    rep.set_defaults(func=cmd_replay)

    for name, helptext, func in (
        ("audit", "list the audit trail (what Perimeter changed, oldest first)", cmd_audit),
        (
            "restore",
            "undo one remediation (audit id), or undo and exempt a finding's (finding id)",
            cmd_restore,
        ),
    ):
        p = sub.add_parser(name, help=helptext)
        if name == "restore":
            p.add_argument(
                "audit_id",
                metavar="AUDIT_ID|FINDING_ID",
                help=(
                    "an audit id, as `perimeter audit list` prints it (restores only), or a Security Hub "
                    "finding id (perimeter/...): undo its remediation and exempt it, as the Security Hub "
                    "action 'Perimeter undo' does"
                ),
            )
            p.add_argument(
                "--days",
                type=int,
                default=7,
                help="how long a FINDING_ID undo exempts (default: %(default)s)",
            )
            p.add_argument(
                "--exemptions-table",
                help="exemptions table name (default: <stack>-ExemptionsTable, as the runner names it)",
            )
            p.add_argument(
                "--member-role",
                default="perimeter-remediation",
                help="organization mode: the member role's base name (MemberRoleName); a record of "
                "another account is restored through <name>-<region> in that account",
            )
            p.add_argument(
                "--external-id",
                help="organization mode: the member role's external id (default: $PERIMETER_EXTERNAL_ID)",
            )
        else:
            p.add_argument("what", nargs="?", choices=["list"], default="list", help="list (the default)")
        p.add_argument("--stack-name", default="perimeter", help=stack_help)
        p.add_argument(
            "--table", help="audit table name (default: <stack>-AuditTable, as the runner names it)"
        )
        p.set_defaults(func=func)

    local = sub.add_parser("local", help="a local AWS (moto) that lasts across commands")
    local.add_argument(
        "action",
        choices=["up", "down", "status"],
        help="up: start it and print the exports to eval; down: stop it; status: print the exports",
    )
    local.add_argument(
        "--region", default="us-east-1", help="region of the local account (default: %(default)s)"
    )
    local.set_defaults(func=cmd_local)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except Exception as exc:
        line = explain(exc)
        if line is None:
            raise  # not a setting the user can fix: a bug, keep its traceback
        print(f"perimeter: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
