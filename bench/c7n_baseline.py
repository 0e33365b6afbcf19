#!/usr/bin/env python3
"""Cloud Custodian baseline: per-event latency of a cloudtrail-mode policy.

Runs with the c7n virtual environment's interpreter (``.venv-c7n/bin/python``),
never with the main one: Cloud Custodian pins its own boto3/botocore.

What is measured
----------------
One Cloud Custodian Lambda invocation per CloudTrail event, in-process, through
Cloud Custodian's own Lambda entry point ``c7n.handler.dispatch_event`` with a
``config.json`` in the working directory (exactly what its deployed Lambda
runs).  The policy is the equivalent of Perimeter's path: security group with
an ingress rule open to 0.0.0.0/0 -> remove the matched permissions, post a
Security Hub finding, notify over SNS.

Per iteration, *untimed*: open tcp/22 to 0.0.0.0/0 on the seeded group with
boto3 and build the EventBridge "AWS API Call via CloudTrail" event for it.
*Timed* (``time.perf_counter``): ``dispatch_event(event, context)`` only.
*Untimed* again: describe the group and fail if the rule is still there, and
fail if the invocation did not call Revoke/BatchImportFindings/Publish.

How AWS calls are counted
-------------------------
Client side, on the wire: every botocore session created in this process gets a
``before-send`` handler (botocore's documented event system).  ``before-send``
fires once per HTTP request actually sent, so retries would be counted too, and
the event name carries the service and operation.  The hook is installed by
wrapping ``botocore.session.Session.__init__``, which covers every session
Cloud Custodian builds (its ``local_session`` cache, the fresh session its
``notify`` action makes per call, assumed-role sessions).  Counting is only
switched on around ``dispatch_event``, so seeding and verification calls are
not attributed to Cloud Custodian.  The handler is a dict increment: its cost
is negligible next to an HTTP round trip.

The endpoint must be a moto server (loopback only); fake credentials are forced
so no real credential is ever sent anywhere.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

# ---------------------------------------------------------------------------
# Environment: must be fixed before boto3/botocore/c7n read it.
# ---------------------------------------------------------------------------

_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _configure_environment(endpoint: str, region: str) -> None:
    """Point every boto3 client (ours and Cloud Custodian's) at the endpoint.

    ``AWS_ENDPOINT_URL`` is honoured by botocore for every service, which is how
    Cloud Custodian's unmodified sessions end up talking to moto.  Credentials
    are forced to fake values so a developer's real keys or profile can never
    be picked up, even by accident.
    """
    for var in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        os.environ.pop(var, None)
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            # No shared config/credentials files: nothing outside this run matters.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            # Lambda-like defaults of c7n.handler, made explicit: log the event
            # (its default), and let a policy error fail the invocation (and so
            # the benchmark) instead of being swallowed.
            "C7N_DEBUG_EVENT": "yes",
            "C7N_CATCH_ERR": "no",
        }
    )


# ---------------------------------------------------------------------------
# AWS request counting
# ---------------------------------------------------------------------------


class RequestCounter:
    """Counts HTTP requests per ``service.Operation`` while enabled."""

    def __init__(self) -> None:
        self.enabled = False
        self.counts: collections.Counter[str] = collections.Counter()

    def on_before_send(self, event_name: str = "", **_: Any) -> None:
        # event_name is "before-send.<service-id>.<OperationName>".
        if self.enabled:
            _, service, operation = event_name.split(".", 2)
            self.counts[f"{service}.{operation}"] += 1
        # Returning None keeps botocore sending the request normally.

    def take(self) -> collections.Counter[str]:
        """Return the counts gathered so far and start from zero."""
        counts, self.counts = self.counts, collections.Counter()
        return counts


def install_request_counter() -> RequestCounter:
    """Register the counter on every botocore session created from now on."""
    import botocore.session

    counter = RequestCounter()
    original_init: Callable[..., None] = botocore.session.Session.__init__

    def init_with_counter(self: botocore.session.Session, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        # Clients copy their session's emitter when created, so registering
        # here reaches every client the session will ever make.
        self.register("before-send", counter.on_before_send)

    botocore.session.Session.__init__ = init_with_counter  # type: ignore[method-assign]
    return counter


# ---------------------------------------------------------------------------
# Seeding and the per-iteration rule / event
# ---------------------------------------------------------------------------

WORLD_SSH = {
    "IpProtocol": "tcp",
    "FromPort": 22,
    "ToPort": 22,
    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
}

# Operations the policy must perform on every event for the run to count.
REQUIRED_OPERATIONS = (
    "ec2.RevokeSecurityGroupIngress",
    "securityhub.BatchImportFindings",
    "sns.Publish",
)


@dataclass
class Fixture:
    """AWS objects seeded on the moto server for one benchmark run."""

    account_id: str
    region: str
    vpc_id: str
    group_id: str
    topic_arn: str
    run_id: str
    clients: dict[str, Any] = field(repr=False, default_factory=dict)


def seed(region: str) -> Fixture:
    """Create the VPC, security group and SNS topic; make sure Security Hub is on.

    Names carry a random run id: the moto server may be shared with other
    benchmarks (Perimeter's own) and must not collide with their objects.
    """
    import boto3
    from botocore.exceptions import ClientError

    run_id = uuid.uuid4().hex[:8]
    session = boto3.Session(region_name=region)
    ec2 = session.client("ec2")
    sns = session.client("sns")
    securityhub = session.client("securityhub")
    account_id = session.client("sts").get_caller_identity()["Account"]

    vpc_id = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    group_id = ec2.create_security_group(
        GroupName=f"c7n-bench-{run_id}",
        Description="Cloud Custodian baseline benchmark",
        VpcId=vpc_id,
    )["GroupId"]
    topic_arn = sns.create_topic(Name=f"c7n-bench-{run_id}")["TopicArn"]

    try:
        securityhub.describe_hub()
    except ClientError:
        try:
            securityhub.enable_security_hub(EnableDefaultStandards=False)
        except ClientError as exc:
            # Another benchmark on the same server may have enabled it between
            # our two calls; anything else is a real failure.
            if exc.response["Error"]["Code"] != "ResourceConflictException":
                raise

    return Fixture(
        account_id=account_id,
        region=region,
        vpc_id=vpc_id,
        group_id=group_id,
        topic_arn=topic_arn,
        run_id=run_id,
        clients={"ec2": ec2, "securityhub": securityhub},
    )


def open_world_ssh(fixture: Fixture) -> str:
    """Authorize tcp/22 from 0.0.0.0/0 and return the new rule's id."""
    response = fixture.clients["ec2"].authorize_security_group_ingress(
        GroupId=fixture.group_id, IpPermissions=[WORLD_SSH]
    )
    rules = response.get("SecurityGroupRules") or [{}]
    return rules[0].get("SecurityGroupRuleId", f"sgr-{uuid.uuid4().hex[:17]}")


def world_ssh_present(fixture: Fixture) -> bool:
    """True if the group still has tcp/22 open to 0.0.0.0/0."""
    group = fixture.clients["ec2"].describe_security_groups(GroupIds=[fixture.group_id])["SecurityGroups"][0]
    for perm in group.get("IpPermissions", []):
        if (
            perm.get("IpProtocol") == "tcp"
            and perm.get("FromPort") == 22
            and any(r.get("CidrIp") == "0.0.0.0/0" for r in perm.get("IpRanges", []))
        ):
            return True
    return False


def cloudtrail_event(fixture: Fixture, rule_id: str) -> dict[str, Any]:
    """EventBridge event CloudTrail emits for the AuthorizeSecurityGroupIngress.

    Shaped like the real one (field names and nesting of CloudTrail's
    ``requestParameters``/``responseElements``), with unique ids per event.
    """
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    request_id = str(uuid.uuid4())
    user_arn = f"arn:aws:iam::{fixture.account_id}:user/bench-operator"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.ec2",
        "account": fixture.account_id,
        "time": now,
        "region": fixture.region,
        "resources": [],
        "detail": {
            "eventVersion": "1.08",
            "userIdentity": {
                "type": "IAMUser",
                "principalId": "AIDAEXAMPLEBENCHUSER",
                "arn": user_arn,
                "accountId": fixture.account_id,
                "accessKeyId": "AKIAEXAMPLEBENCHKEY",
                "userName": "bench-operator",
            },
            "eventTime": now,
            "eventSource": "ec2.amazonaws.com",
            "eventName": "AuthorizeSecurityGroupIngress",
            "awsRegion": fixture.region,
            "sourceIPAddress": "198.51.100.7",
            "userAgent": "aws-cli/2.15.0",
            "requestParameters": {
                "groupId": fixture.group_id,
                "ipPermissions": {
                    "items": [
                        {
                            "ipProtocol": "tcp",
                            "fromPort": 22,
                            "toPort": 22,
                            "groups": {},
                            "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
                            "ipv6Ranges": {},
                            "prefixListIds": {},
                        }
                    ]
                },
            },
            "responseElements": {
                "requestId": request_id,
                "_return": True,
                "securityGroupRuleSet": {
                    "items": [
                        {
                            "groupOwnerId": fixture.account_id,
                            "groupId": fixture.group_id,
                            "securityGroupRuleId": rule_id,
                            "isEgress": False,
                            "ipProtocol": "tcp",
                            "fromPort": 22,
                            "toPort": 22,
                            "cidrIpv4": "0.0.0.0/0",
                        }
                    ]
                },
            },
            "requestID": request_id,
            "eventID": str(uuid.uuid4()),
            "readOnly": False,
            "eventType": "AwsApiCall",
            "managementEvent": True,
            "recipientAccountId": fixture.account_id,
            "eventCategory": "Management",
        },
    }


class LambdaContext:
    """The few attributes of a Lambda context object (c7n ignores it today)."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


# ---------------------------------------------------------------------------
# Cloud Custodian policy
# ---------------------------------------------------------------------------


def policy_config(fixture: Fixture) -> dict[str, Any]:
    """config.json as Cloud Custodian's Lambda packaging writes it."""
    return {
        "execution-options": {
            # Without it c7n.handler asks STS for the account on cold start.
            "account_id": fixture.account_id,
            "region": fixture.region,
            "metrics_enabled": False,
            "cache": "",
            "cache_period": 0,
        },
        "policies": [
            {
                "name": f"c7n-bench-{fixture.run_id}",
                "resource": "aws.security-group",
                "description": "Revoke security group ingress open to 0.0.0.0/0",
                "mode": {
                    "type": "cloudtrail",
                    "events": [
                        {
                            "source": "ec2.amazonaws.com",
                            "event": "AuthorizeSecurityGroupIngress",
                            "ids": "requestParameters.groupId",
                        }
                    ],
                },
                "filters": [{"type": "ingress", "Cidr": {"value": "0.0.0.0/0"}}],
                "actions": [
                    {"type": "remove-permissions", "ingress": "matched"},
                    {
                        "type": "post-finding",
                        "severity_label": "HIGH",
                        "types": [
                            (
                                "Software and Configuration Checks/"
                                "AWS Security Best Practices/Network Reachability"
                            ),
                        ],
                    },
                    {
                        "type": "notify",
                        # c7n's notify schema requires `to` and `transport`; the
                        # recipients are only used by c7n-mailer downstream.
                        "to": ["event-user"],
                        "subject": "World-open security group ingress revoked",
                        "transport": {"type": "sns", "topic": fixture.topic_arn},
                    },
                ],
            }
        ],
    }


def validate_policy(config: dict[str, Any]) -> None:
    """Schema-check the policy like ``custodian validate`` (untimed, once)."""
    from c7n.resources import load_resources
    from c7n.schema import validate

    resource_types = ("aws.security-group",)
    load_resources(resource_types)
    errors = validate({"policies": config["policies"]}, resource_types=resource_types)
    if errors:
        raise SystemExit(f"c7n rejected the benchmark policy: {errors}")


# ---------------------------------------------------------------------------
# Benchmark
# ---------------------------------------------------------------------------


@dataclass
class Invocation:
    elapsed_ms: float
    calls: collections.Counter[str]


def invoke_once(
    fixture: Fixture,
    counter: RequestCounter,
    dispatch: Callable[[dict[str, Any], Any], Any],
    function_name: str,
) -> Invocation:
    """Open the rule, time one c7n invocation on its event, verify the effect."""
    if world_ssh_present(fixture):
        raise SystemExit("precondition: tcp/22 0.0.0.0/0 already open before the event")
    rule_id = open_world_ssh(fixture)
    event = cloudtrail_event(fixture, rule_id)
    context = LambdaContext(function_name)

    counter.take()
    counter.enabled = True
    start = time.perf_counter()
    try:
        dispatch(event, context)
    finally:
        elapsed = time.perf_counter() - start
        counter.enabled = False
    calls = counter.take()

    # A run that did not do the work is not a measurement.
    if world_ssh_present(fixture):
        raise SystemExit(f"c7n did not revoke the rule for event {event['detail']['eventID']}")
    missing = [op for op in REQUIRED_OPERATIONS if calls[op] < 1]
    if missing:
        raise SystemExit(f"c7n invocation skipped {missing}; calls were {dict(calls)}")
    return Invocation(elapsed_ms=elapsed * 1000.0, calls=calls)


def verify_finding(fixture: Fixture, policy_name: str) -> None:
    """The finding c7n posted must be in Security Hub (checked once at the end)."""
    paginator = fixture.clients["securityhub"].get_paginator("get_findings")
    for page in paginator.paginate():
        if any(f.get("GeneratorId") == policy_name for f in page["Findings"]):
            return
    raise SystemExit("no Security Hub finding from the c7n policy was found")


def p90_nearest_rank(samples: list[float]) -> float:
    """90th percentile, nearest-rank: the smallest sample >= 90 % of samples."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def summarize(invocations: list[Invocation]) -> dict[str, Any]:
    samples = [i.elapsed_ms for i in invocations]
    totals: collections.Counter[str] = collections.Counter()
    for inv in invocations:
        totals.update(inv.calls)
    n = len(invocations)
    return {
        "median_ms": round(statistics.median(samples), 3),
        "p90_ms": round(p90_nearest_rank(samples), 3),
        "mean_ms": round(statistics.fmean(samples), 3),
        "min_ms": round(min(samples), 3),
        "max_ms": round(max(samples), 3),
        # Average per event, by operation (not all events need identical calls:
        # post-finding tags a group only the first time it reports it).
        "calls_per_event": {op: round(c / n, 3) for op, c in sorted(totals.items())},
        "calls_per_event_total": round(sum(totals.values()) / n, 3),
    }


def run(endpoint: str, events: int, region: str, warmup: int) -> dict[str, Any]:
    _configure_environment(endpoint, region)
    # Hook sessions before c7n imports create any.
    counter = install_request_counter()

    import boto3
    import botocore
    import c7n.handler
    from c7n.version import version as c7n_version

    fixture = seed(region)
    config = policy_config(fixture)
    validate_policy(config)
    policy_name: str = config["policies"][0]["name"]
    function_name = f"custodian-{policy_name}"

    workdir = tempfile.mkdtemp(prefix="c7n-bench-")
    # c7n.handler forces a non-S3 output_dir to /tmp and writes per-policy
    # output below it; the run-unique policy name makes this ours to delete.
    c7n_output = os.path.join("/tmp", policy_name)
    previous_cwd = os.getcwd()
    try:
        with open(os.path.join(workdir, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        # dispatch_event reads ./config.json on its first (cold) invocation.
        os.chdir(workdir)

        # Untimed warm-up: the first invocation pays c7n's cold start (config
        # load, resource registry import, first sessions and clients) and the
        # one-off tagging of a newly reported group.  Reported separately.
        cold = [
            invoke_once(fixture, counter, c7n.handler.dispatch_event, function_name) for _ in range(warmup)
        ]
        timed = [
            invoke_once(fixture, counter, c7n.handler.dispatch_event, function_name) for _ in range(events)
        ]
    finally:
        os.chdir(previous_cwd)
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(c7n_output, ignore_errors=True)

    verify_finding(fixture, policy_name)

    result: dict[str, Any] = {
        "tool": "c7n",
        "version": c7n_version,
        "events": events,
        **summarize(timed),
        "warmup": {
            "events": warmup,
            "ms": [round(i.elapsed_ms, 3) for i in cold],
            "calls": [dict(sorted(i.calls.items())) for i in cold],
        },
        "p90_method": "nearest-rank",
        "call_counting": "client-side botocore before-send hook on every session "
        "(HTTP requests sent, retries included)",
        "timed_section": "c7n.handler.dispatch_event(event, context), in-process",
        "samples_ms": [round(i.elapsed_ms, 3) for i in timed],
        "endpoint": endpoint,
        "region": region,
        "python": platform.python_version(),
        "boto3": boto3.__version__,
        "botocore": botocore.__version__,
    }
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--endpoint", required=True, help="URL of a running moto server, e.g. http://127.0.0.1:PORT"
    )
    parser.add_argument("--events", type=int, default=200, help="timed events (default 200)")
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed cold-start events before the timed ones (default 1)"
    )
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument(
        "--json", action="store_true", help="print the result as one JSON object on the last stdout line"
    )
    args = parser.parse_args(argv)
    host = urlparse(args.endpoint).hostname
    if host not in _LOOPBACK_HOSTS and not (host or "").startswith("127."):
        parser.error(f"--endpoint must be a loopback moto server, got host {host!r}")
    if args.events < 1 or args.warmup < 0:
        parser.error("--events must be >= 1 and --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args.endpoint, args.events, args.region, args.warmup)
    calls = ", ".join(f"{op} {n:g}" for op, n in result["calls_per_event"].items())
    print(
        f"Cloud Custodian {result['version']} cloudtrail-mode policy, "
        f"{result['events']} events against {result['endpoint']}"
    )
    print(
        f"  median {result['median_ms']:.1f} ms   p90 {result['p90_ms']:.1f} ms   "
        f"mean {result['mean_ms']:.1f} ms   (min {result['min_ms']:.1f}, "
        f"max {result['max_ms']:.1f})"
    )
    print(f"  AWS calls/event {result['calls_per_event_total']:g}: {calls}")
    if result["warmup"]["events"]:
        print(
            f"  cold start (untimed warm-up) {result['warmup']['ms'][0]:.1f} ms, "
            f"calls {result['warmup']['calls'][0]}"
        )
    if args.json:
        sys.stdout.flush()
        print(json.dumps(result, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
