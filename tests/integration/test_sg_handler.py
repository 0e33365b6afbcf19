"""The SgGuard handler (functions/sg_guard/app.py) under moto: real corpus records replayed
against real groups, AWS state asserted afterwards, AWS calls counted, faults injected.

Everything runs through ``lambda_handler`` with a LambdaContext stand-in. Calls are counted with
botocore ``before-call`` hooks on the boto3 Session the Runtime builds its clients from; faults
are injected the same way (a ``before-call`` hook that raises skips botocore's retries, i.e. a
failure that outlasted them; a ``before-send`` hook that answers HTTP 503 goes through them).
"""

from __future__ import annotations

import importlib.util
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import perimeter.core.runtime
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.botocore_stubber import MockRawResponse
from perimeter.core.events import MalformedEvent, wrap_in_envelope
from perimeter.core.runtime import Runtime, Settings

from tests.corpus import MOTO_ACCOUNT, REGION, load, records, replay_sg_record
from tests.harness import create_stack_resources, drain_messages

APP_PATH = Path(__file__).resolve().parents[2] / "functions" / "sg_guard" / "app.py"
SELF_ROLE = "perimeter-sg-guard-us-east-1"
AUDIT_TABLE = "perimeter-audit"
IDEMPOTENCY_TABLE = "perimeter-idempotency"
FINDINGS_TABLE = "perimeter-findings-ledger"
WRITE_OPS = {
    "RevokeSecurityGroupIngress",
    "RevokeSecurityGroupEgress",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchImportFindings",
    "Publish",
}


def load_handler() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    spec = importlib.util.spec_from_file_location("sg_guard_app_under_test", APP_PATH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler  # type: ignore[no-any-return]


@dataclass
class LambdaContext:
    function_name: str = "perimeter-sg-guard"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{MOTO_ACCOUNT}:function:perimeter-sg-guard"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class Env:
    """The moto account, the clients used to arrange and inspect it, and the handler's calls."""

    ec2: Any
    ddb: Any
    hub: Any
    sqs: Any
    queue_url: str
    vpc_id: str
    session: Any
    calls: list[str] = field(default_factory=list)
    handler: Callable[[dict[str, Any], Any], dict[str, Any]] = field(default=lambda e, c: {})

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.handler(event, LambdaContext())

    def group(self, tags: dict[str, str] | None = None) -> str:
        spec: dict[str, Any] = {
            "GroupName": f"g-{uuid.uuid4().hex[:8]}",
            "Description": "t",
            "VpcId": self.vpc_id,
        }
        if tags:
            spec["TagSpecifications"] = [
                {"ResourceType": "security-group", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ]
        return self.ec2.create_security_group(**spec)["GroupId"]

    def rules(self, group_id: str) -> set[tuple[bool, str, Any, Any, str]]:
        out = set()
        resp = self.ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])
        for r in resp["SecurityGroupRules"]:
            peer = r.get("CidrIpv4") or r.get("CidrIpv6") or ""
            ported = r["IpProtocol"] != "-1"
            out.add(
                (
                    r["IsEgress"],
                    r["IpProtocol"],
                    r.get("FromPort") if ported else None,
                    r.get("ToPort") if ported else None,
                    peer,
                )
            )
        return out

    def findings(self, group_id: str) -> dict[str, dict[str, Any]]:
        out = {}
        for f in self.hub.get_findings()["Findings"]:  # moto ignores Filters
            if f["Id"].endswith(f"/{group_id}"):
                out[f["GeneratorId"]] = f
        return out

    def messages(self) -> list[dict[str, Any]]:
        return drain_messages(self.sqs, self.queue_url)

    def audit(self, audit_id: str) -> dict[str, Any] | None:
        item = self.ddb.get_item(TableName=AUDIT_TABLE, Key={"pk": {"S": audit_id}}).get("Item")
        return json.loads(item["body"]["S"]) if item else None

    def ops(self) -> list[str]:
        """Operation names the handler called since the last look (and forget them)."""
        out, self.calls[:] = list(self.calls), []
        return out


def public_vpc(ec2: Any, cidr: str = "10.0.0.0/16", *, routed: bool = True) -> str:
    """A VPC whose main route table reaches an internet gateway (where world-open rules matter)."""
    vpc_id = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    if routed:
        igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc_id)
        tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["RouteTables"]
        ec2.create_route(
            RouteTableId=tables[0]["RouteTableId"], DestinationCidrBlock="0.0.0.0/0", GatewayId=igw
        )
    return vpc_id


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
        "PERIMETER_AUDIT_TABLE": AUDIT_TABLE,
        "PERIMETER_IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
        "PERIMETER_FINDINGS_TABLE": FINDINGS_TABLE,
        "PERIMETER_ACCOUNT_ID": MOTO_ACCOUNT,
        "PERIMETER_SELF_ROLES": f"{SELF_ROLE},perimeter-other-us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "Perimeter",
    }.items():
        monkeypatch.setenv(k, v)
    for k in ("PERIMETER_DRY_RUN", "PERIMETER_POLICY_PARAMETER", "AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    with mock_aws():
        topic, queue_url = create_stack_resources(
            boto3.session.Session(region_name=REGION),
            audit_table=AUDIT_TABLE,
            idempotency_table=IDEMPOTENCY_TABLE,
            findings_table=FINDINGS_TABLE,
            topic_name="perimeter-alerts",
            queue_name="alerts",
            raw_delivery=False,
        )
        monkeypatch.setenv("PERIMETER_TOPIC_ARN", topic)
        ddb = boto3.client("dynamodb", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        hub = boto3.client("securityhub", region_name=REGION)
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc_id = public_vpc(ec2)

        session = boto3.session.Session(region_name=REGION)
        e = Env(ec2, ddb, hub, sqs, queue_url, vpc_id, session)

        def count(event_name: str, **_: Any) -> None:
            e.calls.append(event_name.rsplit(".", 1)[-1])

        session.events.register("before-call", count)
        perimeter.core.runtime.reset(Runtime(Settings.from_env(), session=session))
        e.handler = load_handler()
        try:
            yield e
        finally:
            perimeter.core.runtime.reset()


# --- building records for calls made against moto -----------------------------------------


def identity(arn: str = f"arn:aws:sts::{MOTO_ACCOUNT}:assumed-role/Dev/ann") -> dict[str, Any]:
    role = arn.split(":assumed-role/", 1)[1].split("/", 1)[0]
    return {
        "type": "AssumedRole",
        "arn": arn,
        "accountId": MOTO_ACCOUNT,
        "principalId": "AROAEXAMPLE:ann",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "arn": f"arn:aws:iam::{MOTO_ACCOUNT}:role/{role}",
                "accountId": MOTO_ACCOUNT,
                "userName": role,
            }
        },
    }


def ct_permission(perm: dict[str, Any]) -> dict[str, Any]:
    """An API ``IpPermissions`` entry in CloudTrail's spelling."""
    out: dict[str, Any] = {"ipProtocol": perm["IpProtocol"], "groups": {}, "prefixListIds": {}}
    if "FromPort" in perm:
        out["fromPort"], out["toPort"] = perm["FromPort"], perm["ToPort"]
    out["ipRanges"] = (
        {"items": [{"cidrIp": r["CidrIp"]} for r in perm.get("IpRanges", [])]} if perm.get("IpRanges") else {}
    )
    out["ipv6Ranges"] = (
        {"items": [{"cidrIpv6": r["CidrIpv6"]} for r in perm["Ipv6Ranges"]]} if perm.get("Ipv6Ranges") else {}
    )
    return out


def authorize(
    e: Env,
    group_id: str,
    perms: list[dict[str, Any]],
    *,
    egress: bool = False,
    identity_: dict[str, Any] | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """Make the call against moto (one permission per call: moto's response lists only the last
    permission's rules), then the EventBridge event CloudTrail would have delivered for one call
    adding all of them, with ``securityGroupRuleSet`` as real AWS writes it."""
    rule_set = []
    if not error:
        call = e.ec2.authorize_security_group_egress if egress else e.ec2.authorize_security_group_ingress
        for perm in perms:
            for r in call(GroupId=group_id, IpPermissions=[perm])["SecurityGroupRules"]:
                item = {
                    "groupId": r["GroupId"],
                    "groupOwnerId": MOTO_ACCOUNT,
                    "isEgress": r["IsEgress"],
                    "ipProtocol": r["IpProtocol"],
                    "securityGroupRuleId": r["SecurityGroupRuleId"],
                    "fromPort": r.get("FromPort", -1),
                    "toPort": r.get("ToPort", -1),
                }
                item["cidrIpv6" if "CidrIpv6" in r else "cidrIpv4"] = r.get("CidrIpv6") or r.get("CidrIpv4")
                rule_set.append(item)
    detail: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": identity_ or identity(),
        "eventTime": "2026-06-01T10:00:00Z",
        "eventSource": "ec2.amazonaws.com",
        "eventName": "AuthorizeSecurityGroupEgress" if egress else "AuthorizeSecurityGroupIngress",
        "awsRegion": REGION,
        "requestParameters": {
            "groupId": group_id,
            "ipPermissions": {"items": [ct_permission(p) for p in perms]},
        },
        "responseElements": {"_return": True, "securityGroupRuleSet": {"items": rule_set}}
        if not error
        else None,
        "eventID": str(uuid.uuid4()),
        "eventType": "AwsApiCall",
        "recipientAccountId": MOTO_ACCOUNT,
    }
    if error:
        detail["errorCode"] = error
        detail["errorMessage"] = "You are not authorized to perform this operation."
    return wrap_in_envelope(detail)


def tcp(port: int, cidr: str = "0.0.0.0/0") -> dict[str, Any]:
    key, inner = ("Ipv6Ranges", "CidrIpv6") if ":" in cidr else ("IpRanges", "CidrIp")
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, key: [{inner: cidr}]}


def event_id(event: dict[str, Any]) -> str:
    return str(event["detail"]["eventID"])


# --- the corpus through the real handler ----------------------------------------------------

W4, W6 = "0.0.0.0/0", "::/0"
MODEL = {"perimeter:tier": "model"}


@dataclass(frozen=True)
class Expect:
    status: str
    #: rules left on the group afterwards, besides AWS's default egress rule
    remaining: frozenset[tuple[bool, str, Any, Any, str]]
    #: control -> (Compliance.Status, perimeter/action)
    findings: dict[str, tuple[str, str]]
    tags: dict[str, str] | None = None


DEFAULT_EGRESS = (True, "-1", None, None, W4)

REPLAYS: dict[str, Expect] = {
    "AuthorizeSecurityGroupIngress/panther-1.json": Expect(
        "compliant", frozenset({(False, "tcp", 443, 443, "0.0.0.0/16")}), {}
    ),
    "AuthorizeSecurityGroupIngress/panther-2.json": Expect(
        "remediated", frozenset(), {"PER-SG-1": ("PASSED", "revoked"), "PER-SG-2": ("PASSED", "revoked")}
    ),
    "AuthorizeSecurityGroupIngress/panther-3.json": Expect(
        "reported", frozenset({(False, "tcp", 22, 22, "127.0.0.1/32")}), {"PER-SG-2": ("FAILED", "detected")}
    ),
    "AuthorizeSecurityGroupIngress/reflex-1.json": Expect(
        "remediated", frozenset(), {"PER-SG-1": ("PASSED", "revoked")}
    ),
    "AuthorizeSecurityGroupIngress/stratus-1.json": Expect(
        "remediated", frozenset(), {"PER-SG-1": ("PASSED", "revoked"), "PER-SG-2": ("PASSED", "revoked")}
    ),
    "AuthorizeSecurityGroupIngress/streamalert-1.json": Expect(
        "remediated",
        frozenset(),
        {
            "PER-SG-1": ("PASSED", "revoked"),
            "PER-SG-2": ("PASSED", "revoked"),
            "PER-SG-3": ("PASSED", "revoked"),
        },
    ),
    "AuthorizeSecurityGroupEgress/panther-1.json": Expect("compliant", frozenset(), {}),
    "AuthorizeSecurityGroupEgress/panther-1.json#model": Expect(
        "reported", frozenset(), {"PER-SG-4": ("FAILED", "detected")}, tags=MODEL
    ),
    "CreateSecurityGroup/panther-1.json": Expect("compliant", frozenset(), {}),
    "CreateSecurityGroup/reflex-1.json": Expect("compliant", frozenset(), {}),
    "CreateSecurityGroup/reflex-1.json#model": Expect(
        "reported", frozenset(), {"PER-SG-4": ("FAILED", "detected")}, tags=MODEL
    ),
}


def test_every_sg_corpus_record_is_replayed() -> None:
    names = {
        n
        for n, _ in records(
            "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress", "CreateSecurityGroup"
        )
    }
    assert names == {k.split("#")[0] for k in REPLAYS}


@pytest.mark.parametrize("case", sorted(REPLAYS))
def test_corpus_record_through_handler(env: Env, case: str) -> None:
    expect = REPLAYS[case]
    replayed = replay_sg_record(env.ec2, load(case.split("#")[0]), vpc_id=env.vpc_id, tags=expect.tags)
    gid = replayed.group_id
    env.ops()
    result = env.invoke(replayed.event)

    assert result["status"] == expect.status
    assert env.rules(gid) == expect.remaining | {DEFAULT_EGRESS}
    findings = env.findings(gid)
    assert {
        c: (f["Compliance"]["Status"], f["ProductFields"]["perimeter/action"]) for c, f in findings.items()
    } == (expect.findings)
    messages = env.messages()
    audit = env.audit(f"{event_id(replayed.event)}#{gid}")
    ops = env.ops()
    if expect.status == "compliant":
        assert messages == [] and audit is None
        assert not WRITE_OPS & set(ops), ops
        return
    (msg,) = messages
    body = json.loads(msg["Message"])
    assert body["event_id"] == event_id(replayed.event)
    assert {d["control"] for d in body["decisions"]} == set(expect.findings)
    assert msg["MessageAttributes"]["control"]["Value"] in expect.findings
    if expect.status == "remediated":
        assert audit is not None and audit["group_id"] == gid
        assert ops.count("RevokeSecurityGroupIngress") == 1
        removed = {r["rule_id"] for r in audit["rules"]}
        for f in findings.values():
            assert set(f["ProductFields"]["perimeter/removed_rule_ids"].split(",")) <= removed
            assert f["ProductFields"]["perimeter/undo"] == f"perimeter restore {audit['audit_id']}"
        # the record's own rule id (stratus-1) was mapped to the real one, which is what was revoked
        assert set(replayed.rule_ids.values()) <= removed
    else:
        assert audit is None
        assert not {"RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress"} & set(ops)


def test_stratus_shorthand_revoked_by_rule_id(env: Env) -> None:
    replayed = replay_sg_record(
        env.ec2, load("AuthorizeSecurityGroupIngress/stratus-1.json"), vpc_id=env.vpc_id
    )
    (real_id,) = replayed.rule_ids.values()
    detail = replayed.event["detail"]
    assert detail["responseElements"]["securityGroupRuleSet"]["items"][0]["securityGroupRuleId"] == real_id
    assert detail["requestParameters"]["cidrIp"] == "208.236.235.254/0"
    env.invoke(replayed.event)
    # rule ids came from the record: no DescribeSecurityGroupRules lookup was needed
    assert "DescribeSecurityGroupRules" not in env.ops()
    assert env.rules(replayed.group_id) == {DEFAULT_EGRESS}


# --- only the offending rules, in as few calls as possible ------------------------------------


def test_violating_event_minimal_calls_and_harmless_rule_stays(env: Env) -> None:
    gid = env.group({"perimeter:tier": "app"})
    event = authorize(env, gid, [tcp(22), tcp(443), tcp(8080, "10.0.3.0/24")])
    env.ops()
    result = env.invoke(event)
    assert result["status"] == "remediated"
    assert env.rules(gid) == {
        (False, "tcp", 443, 443, W4),
        (False, "tcp", 8080, 8080, "10.0.3.0/24"),
        DEFAULT_EGRESS,
    }
    ops = env.ops()
    ec2_ops = [o for o in ops if o.startswith(("Describe", "Revoke", "Authorize"))]
    # the container's first group read fetches the region's route tables beside it
    assert sorted(ec2_ops[:2]) == ["DescribeRouteTables", "DescribeSecurityGroups"]
    assert ec2_ops[2:] == ["RevokeSecurityGroupIngress"]
    assert ops.count("BatchImportFindings") == 1 and ops.count("Publish") == 1
    (msg,) = env.messages()
    assert msg["MessageAttributes"]["action"]["Value"] == "revoked"
    assert msg["MessageAttributes"]["severity"]["Value"] == "HIGH"

    # a second violating event in the same container: VPC facts are cached
    gid2 = env.group()
    env.invoke(authorize(env, gid2, [tcp(3389, "52.0.0.0/8")]))
    ec2_ops = [o for o in env.ops() if o.startswith(("Describe", "Revoke"))]
    assert ec2_ops == ["DescribeSecurityGroups", "RevokeSecurityGroupIngress"]
    assert env.rules(gid2) == {DEFAULT_EGRESS}


def test_compliant_event_makes_no_write(env: Env) -> None:
    gid = env.group()
    event = authorize(env, gid, [tcp(443), tcp(5432, "10.0.0.0/16")])
    env.ops()
    assert env.invoke(event)["status"] == "compliant"
    assert sorted(env.ops()) == ["DescribeRouteTables", "DescribeSecurityGroups"]  # read together
    assert env.messages() == [] and env.findings(gid) == {}


def test_audit_record_is_exact_and_restorable(env: Env) -> None:
    gid = env.group()
    event = authorize(env, gid, [tcp(22), tcp(22, W6)])
    env.invoke(event)
    assert env.rules(gid) == {DEFAULT_EGRESS}
    record = env.audit(f"{event_id(event)}#{gid}")
    assert record is not None
    assert record["actor"] == f"arn:aws:sts::{MOTO_ACCOUNT}:assumed-role/Dev/ann"
    assert record["event_id"] == event_id(event)
    # what `perimeter restore` does: authorize the recorded permissions again
    env.ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=record["restore"]["ingress"])
    assert env.rules(gid) == {(False, "tcp", 22, 22, W4), (False, "tcp", 22, 22, W6), DEFAULT_EGRESS}


def test_model_tier_egress_detected_not_revoked(env: Env) -> None:
    gid = env.group(MODEL)
    env.ec2.revoke_security_group_egress(
        GroupId=gid, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": W4}]}]
    )
    event = authorize(env, gid, [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": W4}]}], egress=True)
    result = env.invoke(event)
    assert result["status"] == "reported"
    assert env.rules(gid) == {DEFAULT_EGRESS}
    f = env.findings(gid)["PER-SG-4"]
    assert (f["Compliance"]["Status"], f["RecordState"], f["Workflow"]["Status"]) == (
        "FAILED",
        "ACTIVE",
        "NEW",
    )


# --- guards and bad input ------------------------------------------------------------------


def test_duplicate_event_is_a_no_op(env: Env) -> None:
    gid = env.group()
    event = authorize(env, gid, [tcp(22)])
    first = env.invoke(event)
    assert first["status"] == "remediated"
    assert len(env.messages()) == 1
    env.ops()
    second = env.invoke(event)
    assert second == first  # the stored result of the first run
    ops = env.ops()
    assert not {"RevokeSecurityGroupIngress", "BatchImportFindings", "Publish"} & set(ops), ops
    assert env.messages() == []
    assert len(env.findings(gid)) == 2


def test_own_role_event_ignored(env: Env) -> None:
    gid = env.group()
    own = identity(f"arn:aws:sts::{MOTO_ACCOUNT}:assumed-role/{SELF_ROLE}/perimeter-sg-guard")
    event = authorize(env, gid, [tcp(22)], identity_=own)
    env.ops()
    result = env.invoke(event)
    assert result["status"] == "ignored" and SELF_ROLE in result["reason"]
    assert env.ops() == []
    assert env.rules(gid) == {(False, "tcp", 22, 22, W4), DEFAULT_EGRESS}


def test_failed_call_ignored(env: Env) -> None:
    gid = env.group()
    event = authorize(env, gid, [tcp(22)], error="Client.UnauthorizedOperation")
    env.ops()
    result = env.invoke(event)
    assert result["status"] == "ignored" and "Client.UnauthorizedOperation" in result["reason"]
    assert env.ops() == []


def test_other_region_ignored(env: Env) -> None:
    gid = env.group()
    event = authorize(env, gid, [tcp(22)])
    event["detail"]["awsRegion"] = "eu-west-1"
    assert env.invoke(event)["status"] == "ignored"
    assert (False, "tcp", 22, 22, W4) in env.rules(gid)


def test_deleted_group_clean_no_op(env: Env) -> None:
    gid = env.group()
    event = authorize(env, gid, [tcp(22)])
    env.ec2.delete_security_group(GroupId=gid)
    env.ops()
    result = env.invoke(event)
    assert result["status"] == "group-deleted" and result["groups"] == [gid]
    assert not WRITE_OPS & set(env.ops())
    assert env.messages() == []


@pytest.mark.parametrize(
    "event",
    [
        {"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {}},
        {"detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2", "detail": {"eventSource": "x"}},
        wrap_in_envelope(
            {
                "eventName": "AuthorizeSecurityGroupIngress",
                "eventSource": "ec2.amazonaws.com",
                "awsRegion": REGION,
                "recipientAccountId": MOTO_ACCOUNT,
                "requestParameters": {"ipPermissions": {}},
            }
        ),
    ],
    ids=["not-cloudtrail", "no-event-name", "no-group-id"],
)
def test_malformed_event_raises(env: Env, event: dict[str, Any]) -> None:
    with pytest.raises(MalformedEvent):
        env.invoke(event)
    assert not WRITE_OPS & set(env.ops())


# --- fault injection -----------------------------------------------------------------------


def fail_first(env: Env, operation: str, times: int = 1, code: str = "ThrottlingException") -> list[int]:
    """Make the handler's ``operation`` fail ``times`` times as if botocore's retries ran out."""
    seen = [0]

    def hook(**_: Any) -> None:
        seen[0] += 1
        if seen[0] <= times:
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)

    service = {"BatchImportFindings": "securityhub", "Publish": "sns"}[operation]
    env.session.events.register(f"before-call.{service}.{operation}", hook)
    return seen


def test_security_hub_failure_then_retry_reports_from_audit(env: Env) -> None:
    gid = env.group()
    event = authorize(env, gid, [tcp(22)])
    fail_first(env, "BatchImportFindings")
    with pytest.raises(ClientError, match="ThrottlingException"):
        env.invoke(event)
    # the revoke happened and was recorded first; the finding was refused. The notification is
    # an independent write that runs beside the import, so it went out: the released claim
    # names it, and the retry does not send it again (exactly one message over both attempts)
    assert env.rules(gid) == {DEFAULT_EGRESS}
    record = env.audit(f"{event_id(event)}#{gid}")
    assert record is not None and len(record["rules"]) == 1
    first = env.messages()
    assert env.findings(gid) == {} and len(first) == 1

    env.ops()
    retry = env.invoke(event)  # Lambda's retry of the same event
    # remediated by the first attempt: reported from the audit record, not revoked again
    assert retry["status"] == "remediated"
    assert retry["groups"][0]["revoked"] == [] and retry["groups"][0]["audit_id"] == record["audit_id"]
    assert "RevokeSecurityGroupIngress" not in env.ops()
    findings = env.findings(gid)
    assert set(findings) == {"PER-SG-1", "PER-SG-2"}
    for f in findings.values():
        assert f["Compliance"]["Status"] == "PASSED"
        assert f["ProductFields"]["perimeter/removed_rule_ids"] == record["rules"][0]["rule_id"]
        assert f["ProductFields"]["perimeter/audit_id"] == record["audit_id"]
    assert env.messages() == []
    (msg,) = first
    assert msg["MessageAttributes"]["action"]["Value"] == "revoked"
    assert env.audit(record["audit_id"]) == record


def test_sns_failure_then_retry_publishes_once(env: Env) -> None:
    gid = env.group()
    event = authorize(env, gid, [tcp(22), tcp(3306)])
    fail_first(env, "Publish", code="InternalError")
    with pytest.raises(ClientError, match="InternalError"):
        env.invoke(event)
    assert env.rules(gid) == {DEFAULT_EGRESS}
    assert env.messages() == []
    assert {f["Compliance"]["Status"] for f in env.findings(gid).values()} == {"PASSED"}
    env.invoke(event)
    (msg,) = env.messages()
    body = json.loads(msg["Message"])
    assert {d["action"] for d in body["decisions"]} == {"revoked"}
    assert sorted({rid for d in body["decisions"] for rid in d["rule_ids"]}) == sorted(
        r["rule_id"]
        for r in env.audit(f"{event_id(event)}#{gid}")["rules"]  # type: ignore[index]
    )
    assert len(env.findings(gid)) == 2  # updated in place, not duplicated


def test_describe_throttling_retried_by_botocore(env: Env) -> None:
    gid = env.group()
    event = authorize(env, gid, [tcp(22)])
    attempts = [0]

    def throttle(request: Any, **_: Any) -> AWSResponse | None:
        attempts[0] += 1
        if attempts[0] > 2:
            return None  # let moto answer
        body = (
            b"<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
            b"<Message>Request limit exceeded.</Message></Error></Errors><RequestID>r</RequestID></Response>"
        )
        return AWSResponse(request.url, 503, {}, MockRawResponse(body))

    env.session.events.register("before-send.ec2.DescribeSecurityGroups", throttle)
    env.ops()
    result = env.invoke(event)
    assert attempts[0] == 3  # two throttled attempts, then moto
    assert env.ops().count("DescribeSecurityGroups") == 1  # one API call, retried inside botocore
    assert result["status"] == "remediated"
    assert env.rules(gid) == {DEFAULT_EGRESS}


def test_revoke_race_rule_already_gone(env: Env) -> None:
    """Someone removes the rule between our read and our revoke: counted as already gone, the
    audit record is rewritten to list only what Perimeter removed."""
    gid = env.group()
    event = authorize(env, gid, [tcp(22), tcp(23)])
    ids = [
        i["securityGroupRuleId"] for i in event["detail"]["responseElements"]["securityGroupRuleSet"]["items"]
    ]

    raced = []

    def remove_one(**_: Any) -> None:
        if not raced:  # the other actor acts once, just before our first revoke
            raced.append(True)
            boto3.client("ec2", region_name=REGION).revoke_security_group_ingress(
                GroupId=gid, SecurityGroupRuleIds=[ids[0]]
            )

    env.session.events.register("before-call.ec2.RevokeSecurityGroupIngress", remove_one, unique_id="race")
    result = env.invoke(event)
    env.session.events.unregister("before-call.ec2.RevokeSecurityGroupIngress", unique_id="race")
    assert env.rules(gid) == {DEFAULT_EGRESS}
    (group,) = result["groups"]
    assert group["revoked"] == [ids[1]] and group["already_gone"] == [ids[0]]
    record = env.audit(f"{event_id(event)}#{gid}")
    assert record is not None and [r["rule_id"] for r in record["rules"]] == [ids[1]]


def test_unrouted_vpc_still_revokes_world_open(env: Env) -> None:
    """World-open port 55 in a VPC with no internet-gateway route today scores 50+10-10 = 50
    (IPv6: 55): still at the enforce threshold, because routing changes with one API call."""
    private_vpc = public_vpc(env.ec2, "10.9.0.0/16", routed=False)
    replayed = replay_sg_record(
        env.ec2, load("AuthorizeSecurityGroupIngress/reflex-1.json"), vpc_id=private_vpc
    )
    result = env.invoke(replayed.event)
    assert result["status"] == "remediated"
    scores = sorted(v["score"] for v in result["groups"][0]["violations"])
    assert scores == [50, 55]
    assert {r[4] for r in env.rules(replayed.group_id) if not r[0]} == set()
    f = env.findings(replayed.group_id)["PER-SG-1"]
    assert (f["Compliance"]["Status"], f["Severity"]["Label"]) == ("PASSED", "MEDIUM")


# --- the events/ samples through the handler ----------------------------------------------

EVENTS = Path(__file__).resolve().parents[2] / "events"

SAMPLE_OUTCOMES: dict[str, tuple[str, dict[str, str] | None]] = {
    "AuthorizeSecurityGroupIngress--world-ssh.json": ("remediated", None),
    "AuthorizeSecurityGroupIngress--world-all-ipv6.json": ("remediated", None),
    "AuthorizeSecurityGroupIngress--wide-cidr-8080.json": ("remediated", None),
    "AuthorizeSecurityGroupIngress--harmless-https-from-vpc.json": ("compliant", None),
    "AuthorizeSecurityGroupIngress--shorthand-form.json": ("remediated", None),
    "AuthorizeSecurityGroupIngress--failed-call.json": ("ignored", None),
    "AuthorizeSecurityGroupIngress--perimeter-own-role.json": ("ignored", None),
    "AuthorizeSecurityGroupEgress--model-tier-all-traffic.json": ("reported", MODEL),
    "CreateSecurityGroup--model-tier.json": ("reported", MODEL),
}


@pytest.mark.parametrize("name", sorted(SAMPLE_OUTCOMES))
def test_event_sample_through_handler(env: Env, name: str) -> None:
    status, tags = SAMPLE_OUTCOMES[name]
    sample = json.loads((EVENTS / name).read_text(encoding="utf-8"))
    replayed = replay_sg_record(env.ec2, sample, vpc_id=env.vpc_id, tags=tags)
    before = env.rules(replayed.group_id)
    result = env.invoke(replayed.event)
    assert result["status"] == status
    after = env.rules(replayed.group_id)
    if status == "remediated":
        assert after == {DEFAULT_EGRESS} and before != after
    else:
        assert after == before


def test_modify_security_group_rules_wrapped_form(env: Env) -> None:
    """ModifySecurityGroupRules widens a VPC-only Jupyter rule to the world: the modified rule
    (named by id, direction unknown in the record) is found in the group and revoked."""
    gid = env.group({"perimeter:tier": "app"})
    (created,) = env.ec2.authorize_security_group_ingress(
        GroupId=gid, IpPermissions=[tcp(8888, "10.0.0.0/16")]
    )["SecurityGroupRules"]
    rid = created["SecurityGroupRuleId"]
    env.ec2.modify_security_group_rules(
        GroupId=gid,
        SecurityGroupRules=[
            {
                "SecurityGroupRuleId": rid,
                "SecurityGroupRule": {"IpProtocol": "tcp", "FromPort": 8888, "ToPort": 8888, "CidrIpv4": W4},
            }
        ],
    )
    assert env.rules(gid) == {(False, "tcp", 8888, 8888, W4), DEFAULT_EGRESS}
    sample = json.loads(
        (EVENTS / "ModifySecurityGroupRules--widen-to-world.json").read_text(encoding="utf-8")
    )
    text = json.dumps(sample).replace("sg-0123456789abcdef0", gid).replace("sgr-0a1b2c3d4e5f60009", rid)
    event = json.loads(text)
    result = env.invoke(event)
    assert result["status"] == "remediated"
    assert result["groups"][0]["revoked"] == [rid]
    assert env.rules(gid) == {DEFAULT_EGRESS}
    assert set(env.findings(gid)) == {"PER-SG-1", "PER-SG-2"}
