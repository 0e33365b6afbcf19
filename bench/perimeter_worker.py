#!/usr/bin/env python3
"""Perimeter's side of the fair benchmark: one warm "container" driven over a pipe.

Run by ``bench/event_path.py`` and ``bench/memory.py`` with the project's venv, never by hand.
Logs go where Lambda sends them: the handler's stdout and stderr (Powertools JSON logs, EMF
metrics) are redirected to a log file, as Lambda's runtime captures them; the driver's protocol
uses a duplicate of the original stdout.

    perimeter_worker.py serve LOGFILE     # JSON lines: {"cmd": "event"} -> one timed event
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FUNCTION_DIR = ROOT / "functions" / "sg_guard"


def lambda_like_stdio(logfile: str) -> Any:
    """Keep a private copy of stdout for the protocol; send fd 1 and 2 to the log file."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    fd = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    return proto


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Context:
    def __init__(self, name: str) -> None:
        import uuid

        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "bench"
        self._deadline = time.monotonic() + 60

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


def serve(logfile: str) -> int:
    proto = lambda_like_stdio(logfile)
    sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "layers" / "perimeter"), str(FUNCTION_DIR)]
    from callclock import CallClock

    clock = CallClock().install()  # before any session exists

    import boto3
    from perimeter_local.account import prepare
    from perimeter_local.template import functions

    session = boto3.session.Session()
    template, resolver = prepare(session, ROOT / "template.yaml")
    spec = next(s for s in functions(template, resolver, ROOT) if s.logical_id == "SgGuardFunction")
    os.environ.update(spec.environment)
    os.environ["AWS_LAMBDA_FUNCTION_NAME"] = spec.function_name
    account, region = resolver.pseudo["AWS::AccountId"], resolver.pseudo["AWS::Region"]
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="perimeter-bench", Description="bench", VpcId=vpc)["GroupId"]
    world_ssh = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}

    ddb = session.client("dynamodb")
    tables = [os.environ["PERIMETER_AUDIT_TABLE"], os.environ["PERIMETER_IDEMPOTENCY_TABLE"]]

    import app  # the handler module, imported as Lambda's runtime would (functions/sg_guard on the path)

    proto.write(json.dumps({"ready": True, "endpoint": os.environ.get("AWS_ENDPOINT_URL")}) + "\n")
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("cmd") == "quit":
            break
        if cmd.get("cmd") == "batch":  # memory: n events, each still checked, RSS at the end
            for i in range(int(cmd["n"])):
                one_event(ec2, group, world_ssh, account, region, spec.function_name, app, clock)
                if cmd.get("prune") and i % 50 == 49:
                    prune(ddb, tables)
            proto.write(json.dumps({"rss_kib": rss_kib()}) + "\n")
            continue
        if cmd.get("prune"):
            prune(ddb, tables)
        proto.write(
            json.dumps(one_event(ec2, group, world_ssh, account, region, spec.function_name, app, clock))
            + "\n"
        )
    return 0


def prune(ddb: Any, tables: list[str]) -> None:
    """Empty the audit and idempotency tables, outside any timed region. moto copies a whole
    table for every TransactWriteItems (to roll back), so a 10,000-event run would spend its
    time in the server copying ever larger tables; DynamoDB's own cost does not grow so, and
    the container's memory (what ``memory.py`` measures) does not depend on the tables."""
    for table in tables:
        key = "pk" if "udit" in table else "id"
        for page in ddb.get_paginator("scan").paginate(TableName=table, ProjectionExpression=key):
            items = page.get("Items", [])
            for start in range(0, len(items), 25):
                chunk = [{"DeleteRequest": {"Key": {key: it[key]}}} for it in items[start : start + 25]]
                ddb.batch_write_item(RequestItems={table: chunk})


def one_event(
    ec2: Any, group: str, world_ssh: Any, account: str, region: str, name: str, app: Any, clock: Any
) -> dict[str, Any]:
    """Open the rule (untimed), time the handler on its event, check the rule is gone (untimed)."""
    from callclock import depth_until
    from perimeter_local import cloudtrail

    # Untimed: open the rule and build the event CloudTrail would deliver for it.
    created = ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[world_ssh])
    event = cloudtrail.authorize_event(
        account=account,
        region=region,
        group_id=group,
        permissions=[world_ssh],
        created_rules=created["SecurityGroupRules"],
    )
    context = Context(name)  # untimed, as the c7n worker builds its context before its clock
    clock.take()
    clock.enabled = True
    t0 = time.perf_counter()
    try:
        out = app.lambda_handler(event, context)
    finally:
        t1 = time.perf_counter()
        clock.enabled = False
    calls = clock.take()
    # Untimed: the rule must be gone, or this was not a measurement.
    if out.get("status") != "remediated":
        raise SystemExit(f"not remediated: {out}")
    left = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]
    if left:
        raise SystemExit(f"rule still present after the handler: {left}")
    revoke = next((c for c in calls if c.name.startswith("ec2.Revoke")), None)
    result: dict[str, Any] = {
        "ms": (t1 - t0) * 1000,
        "exposure_ms": ((revoke.end or t1) - t0) * 1000 if revoke else None,
        "depth_to_revoke": depth_until(calls, "ec2.Revoke"),
        "calls": [c.name for c in calls],
    }
    return result


if __name__ == "__main__":
    sys.exit(serve(sys.argv[2]) if sys.argv[1] == "serve" else 2)
