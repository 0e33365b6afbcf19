"""ASFF findings, SNS notifications and audit records built from decisions (pure)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import botocore.session
import pytest
import yaml
from botocore.validate import ParamValidator
from hypothesis import given
from hypothesis import strategies as st
from perimeter.core.events import ApiCall, parse_event
from perimeter.core.report import (
    Outcome,
    build_audit_record,
    build_finding,
    build_notification,
    finding_id,
    iso_event_time,
)
from perimeter.core.rules import Rule, rules_from_permission
from perimeter.policy import default_policy_text, load_default_policy, parse_policy
from perimeter.security_groups.changes import GroupChange
from perimeter.security_groups.context import GroupContext
from perimeter.security_groups.evaluate import GroupDecision, decide

GID = "sg-0123456789abcdef0"
ACCOUNT = "123456789012"
REGION = "us-east-1"
NOW = "2026-06-01T10:00:00.000Z"
TODAY = dt.date(2026, 6, 1)
POLICY = load_default_policy()
APP = {"perimeter:tier": "app"}

_HUB = botocore.session.get_session().get_service_model("securityhub")
_FINDING_SHAPE = _HUB.operation_model("BatchImportFindings").input_shape


def call(
    event_id: str = "ev-1",
    time: str = "2026-06-01T09:59:00Z",
    arn: str = "arn:aws:sts::123456789012:assumed-role/Dev/ann",
) -> ApiCall:
    return parse_event(
        {
            "eventName": "AuthorizeSecurityGroupIngress",
            "eventSource": "ec2.amazonaws.com",
            "eventID": event_id,
            "eventTime": time,
            "awsRegion": REGION,
            "recipientAccountId": ACCOUNT,
            "userIdentity": {"type": "AssumedRole", "arn": arn, "accountId": ACCOUNT},
            "requestParameters": {"groupId": GID},
        }
    )


def rule(proto: str, lo: int | None, hi: int | None, cidr: str, rid: str, **kw: Any) -> Rule:
    return Rule(GID, kw.pop("egress", False), proto, lo, hi, cidr, ipv6=":" in cidr, rule_id=rid, **kw)


def decision(
    *rules: Rule, tags: dict[str, str] | None = None, policy: Any = POLICY, present: bool = True
) -> GroupDecision:
    ctx = GroupContext(
        group_id=GID,
        account=ACCOUNT,
        region=REGION,
        group_name="web",
        vpc_id="vpc-1",
        tags=tags if tags is not None else APP,
        vpc_cidrs=("10.0.0.0/16",),
        current_rules=rules if present else (),
    )
    return decide(GroupChange(GID, rules), ctx, policy, today=TODAY)


SSH = rule("tcp", 22, 22, "0.0.0.0/0", "sgr-ssh")
SSH32 = rule("tcp", 22, 22, "127.0.0.1/32", "sgr-ssh32", description="SSH for me")


def findings_for(c: ApiCall, o: Outcome) -> dict[str, dict[str, Any]]:
    return {cid: build_finding(c, cid, vs, o, now=NOW) for cid, vs in o.decision.by_control().items()}


def revoked_outcome(d: GroupDecision, audit_id: str = "ev-1#" + GID) -> Outcome:
    return Outcome(d, revoked=d.to_revoke, audit_id=audit_id)


def assert_valid_asff(f: dict[str, Any]) -> None:
    report = ParamValidator().validate({"Findings": [f]}, _FINDING_SHAPE)
    assert not report.has_errors(), report.generate_report()
    for key in (
        "SchemaVersion",
        "Id",
        "ProductArn",
        "GeneratorId",
        "AwsAccountId",
        "Types",
        "CreatedAt",
        "UpdatedAt",
        "Severity",
        "Title",
        "Description",
        "Resources",
    ):
        assert f[key], key
    assert f["UpdatedAt"] >= f["CreatedAt"]
    assert len(f["Title"]) <= 256 and len(f["Description"]) <= 1024
    assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in f["ProductFields"].items())
    assert f["Resources"][0]["Id"] == f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{GID}"
    assert f["Resources"][0]["Type"] == "AwsEc2SecurityGroup"


def test_revoked_finding_passed_archived_resolved_with_undo() -> None:
    d = decision(SSH)
    fs = findings_for(call(), revoked_outcome(d))
    assert set(fs) == {"PER-SG-1", "PER-SG-2"}
    for cid, f in fs.items():
        assert_valid_asff(f)
        assert f["GeneratorId"] == cid
        assert (f["Compliance"]["Status"], f["RecordState"], f["Workflow"]["Status"]) == (
            "PASSED",
            "ARCHIVED",
            "RESOLVED",
        )
        pf = f["ProductFields"]
        assert pf["perimeter/actor"] == "arn:aws:sts::123456789012:assumed-role/Dev/ann"
        assert pf["perimeter/event_id"] == "ev-1"
        assert pf["perimeter/removed_rule_ids"] == "sgr-ssh"
        assert pf["perimeter/audit_id"] == "ev-1#" + GID
        assert pf["perimeter/undo"] == f"perimeter restore ev-1#{GID}"
        assert pf["perimeter/action"] == "revoked"
        assert pf["perimeter/score"] == "70"
        assert f["Severity"] == {"Label": "HIGH", "Original": "70"}
        assert "Perimeter revoked 1 rule(s)" in f["Description"]
        assert "perimeter restore" in f["Description"]


def test_detect_finding_failed_active_new() -> None:
    d = decision(SSH32)
    (f,) = findings_for(call(), Outcome(d)).values()
    assert_valid_asff(f)
    assert (f["Compliance"]["Status"], f["RecordState"], f["Workflow"]["Status"]) == (
        "FAILED",
        "ACTIVE",
        "NEW",
    )
    assert f["ProductFields"]["perimeter/action"] == "detected"
    assert "perimeter/audit_id" not in f["ProductFields"] and "perimeter/undo" not in f["ProductFields"]
    assert "below enforce threshold" in f["Description"]


def test_exempt_finding_suppressed() -> None:
    doc = yaml.safe_load(default_policy_text())
    doc["exemptions"] = [{"security_group": GID, "reason": "SFTP", "expires": "2027-01-01"}]
    d = decision(SSH, policy=parse_policy(doc))
    for f in findings_for(call(), Outcome(d)).values():
        assert_valid_asff(f)
        assert (f["Compliance"]["Status"], f["RecordState"], f["Workflow"]["Status"]) == (
            "FAILED",
            "ACTIVE",
            "SUPPRESSED",
        )
        assert f["ProductFields"]["perimeter/action"] == "exempt"


def test_removed_earlier_reported_as_revoked_on_retry() -> None:
    d = decision(SSH, present=False)
    o = Outcome(d, removed_by_us_earlier=d.absent_violating, audit_id="ev-1#" + GID)
    for f in findings_for(call(), o).values():
        assert f["Compliance"]["Status"] == "PASSED"
        assert f["ProductFields"]["perimeter/removed_rule_ids"] == "sgr-ssh"


def test_finding_id_deterministic_per_control_and_group() -> None:
    d = decision(SSH)
    a = findings_for(call("ev-1", arn="arn:aws:iam::1:user/a"), revoked_outcome(d))
    b = findings_for(call("ev-2", time="2026-06-02T00:00:00Z"), Outcome(d))
    for cid in a:
        assert a[cid]["Id"] == b[cid]["Id"] == finding_id(cid, ACCOUNT, REGION, GID)
        assert a[cid]["Id"] == f"perimeter/{cid}/{ACCOUNT}/{REGION}/{GID}"
    assert a["PER-SG-1"]["Id"] != a["PER-SG-2"]["Id"]


def test_title_and_description_clipped() -> None:
    many = tuple(rule("tcp", p, p, f"{p % 200 + 1}.0.0.0/0", f"sgr-{p:017x}") for p in range(1000, 1080))
    d = decision(*many)
    for f in findings_for(call(), revoked_outcome(d)).values():
        assert_valid_asff(f)
        assert len(f["Description"]) == 1024 and f["Description"].endswith("\u2026")
        assert len(f["ProductFields"]["perimeter/rules"]) <= 2000


@given(st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1)))
def test_updated_at_never_before_created_at(when: dt.datetime) -> None:
    c = call(time=when.strftime("%Y-%m-%dT%H:%M:%SZ"))
    for f in findings_for(c, Outcome(decision(SSH32))).values():
        assert f["UpdatedAt"] >= f["CreatedAt"] == f["FirstObservedAt"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-08-01T12:23:55Z", "2024-08-01T12:23:55.000Z"),
        ("2021-01-24 04:55:45.000", "2021-01-24T04:55:45.000Z"),  # Panther
        ("2024-12-16 18:41:07.123456789", "2024-12-16T18:41:07.123Z"),  # Panther, nanoseconds
        ("20You 19-10-23T22:50:05Z", "fallback"),
        ("", "fallback"),
    ],
)
def test_iso_event_time(raw: str, expected: str) -> None:
    assert iso_event_time(raw, "fallback") == expected


def test_notification_subject_attributes_body() -> None:
    d1 = decision(SSH)
    d2 = decision(SSH32)
    outcomes = [revoked_outcome(d1), Outcome(d2)]
    fs = [f for o in outcomes for f in findings_for(call(), o).values()]
    note = build_notification(call(), outcomes, fs)
    assert len(note.subject) <= 100 and "\n" not in note.subject
    assert note.subject == f"[Perimeter] HIGH PER-SG-1 revoked on {GID}"
    assert note.attributes == {"control": "PER-SG-1", "severity": "HIGH", "action": "detected,revoked"}
    body = json.loads(json.dumps(note.body))
    assert body["event_id"] == "ev-1" and body["finding_ids"] == [f["Id"] for f in fs]
    decisions = {(x["control"], x["action"]) for x in body["decisions"]}
    assert decisions == {("PER-SG-1", "revoked"), ("PER-SG-2", "revoked"), ("PER-SG-2", "detected")}
    revoked = [x for x in body["decisions"] if x["action"] == "revoked"]
    assert all(x["audit_id"] == "ev-1#" + GID and x["rule_ids"] == ["sgr-ssh"] for x in revoked)
    assert f"perimeter restore ev-1#{GID}" in note.text


def test_notification_subject_bounded_for_long_ids() -> None:
    long_gid = "sg-" + "f" * 200
    r = Rule(long_gid, False, "tcp", 22, 22, "0.0.0.0/0", rule_id="sgr-1")
    ctx = GroupContext(group_id=long_gid, account=ACCOUNT, region=REGION, tags=APP, current_rules=(r,))
    d = decide(GroupChange(long_gid, (r,)), ctx, POLICY, today=TODAY)
    note = build_notification(call(), [Outcome(d)], [])
    assert len(note.subject) <= 100


@pytest.mark.parametrize(
    "rules",
    [
        (SSH,),
        (SSH32,),
        (rule("-1", None, None, "::/0", "sgr-v6"), rule("tcp", 8080, 8081, "52.0.0.0/8", "sgr-8080")),
        (rule("udp", 161, 161, "0.0.0.0/0", "sgr-snmp", description="monitoring"),),
    ],
    ids=["ssh", "ssh32", "v6-and-range", "udp-desc"],
)
def test_audit_restore_recreates_exact_rules(rules: tuple[Rule, ...]) -> None:
    policy = parse_policy({**yaml.safe_load(default_policy_text()), "thresholds": {"enforce_min_score": 0}})
    d = decision(*rules, policy=policy)
    record = build_audit_record(call(), d, "ev-1#" + GID, NOW)
    assert json.loads(json.dumps(record)) == record  # stored as JSON
    assert record["group_id"] == GID and record["event_id"] == "ev-1"
    assert record["controls"] and all(c.startswith("PER-SG-") for c in record["controls"])
    restored = [r for p in record["restore"]["ingress"] for r in rules_from_permission(GID, False, p)]
    restored += [r for p in record["restore"]["egress"] for r in rules_from_permission(GID, True, p)]
    expected = {(r.key, r.description) for r in d.to_revoke}
    assert {(r.key, r.description) for r in restored} == expected
    assert {Rule.from_dict(x).key for x in record["rules"]} == {r.key for r in rules}


def test_rule_to_permission_round_trip_egress_and_refs() -> None:
    for r in (
        Rule(GID, True, "-1", None, None, "0.0.0.0/0", description="egress"),
        Rule(GID, False, "tcp", 5432, 5432, prefix_list_id="pl-1"),
        Rule(GID, False, "tcp", 8000, 8002, referenced_group_id="sg-2", description="app"),
        Rule(GID, False, "icmp", 8, 0, "10.0.0.0/8"),
    ):
        (back,) = rules_from_permission(GID, r.egress, r.to_permission())
        assert back == r
