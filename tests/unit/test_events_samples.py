"""The sample events in ``events/`` (shared with ``sam local invoke -e``): each parses, is named
after its eventName, and the security-group samples mean what their scenario says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from perimeter.core.events import CLOUDTRAIL_DETAIL_TYPE, MalformedEvent, parse_event
from perimeter.core.guard import skip_reason
from perimeter.core.runtime import Settings
from perimeter.security_groups.changes import extract_group_changes

EVENTS = Path(__file__).resolve().parents[2] / "events"
SAMPLES = sorted(EVENTS.glob("*.json"))
ACCOUNT, REGION = "123456789012", "us-east-1"

# What the template resolves for stack "perimeter" in us-east-1
# (RoleName "${AWS::StackName}-sg-guard-${AWS::Region}").
SETTINGS = Settings(
    region=REGION,
    account_id=ACCOUNT,
    audit_table=None,
    idempotency_table=None,
    topic_arn=None,
    policy_parameter=None,
    dry_run=False,
    self_roles=frozenset({"perimeter-sg-guard-us-east-1"}),
)


def sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def test_samples_exist() -> None:
    names = {p.name for p in SAMPLES}
    for expected in (
        "AuthorizeSecurityGroupIngress--world-ssh.json",
        "AuthorizeSecurityGroupIngress--world-all-ipv6.json",
        "AuthorizeSecurityGroupIngress--wide-cidr-8080.json",
        "AuthorizeSecurityGroupIngress--harmless-https-from-vpc.json",
        "AuthorizeSecurityGroupIngress--shorthand-form.json",
        "AuthorizeSecurityGroupIngress--failed-call.json",
        "AuthorizeSecurityGroupIngress--perimeter-own-role.json",
        "AuthorizeSecurityGroupEgress--model-tier-all-traffic.json",
        "ModifySecurityGroupRules--widen-to-world.json",
        "CreateSecurityGroup--model-tier.json",
        "Malformed--not-cloudtrail.json",
    ):
        assert expected in names


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_sample_parses_and_is_named_after_its_event(path: Path) -> None:
    event = json.loads(path.read_text(encoding="utf-8"))
    event_name, sep, scenario = path.stem.partition("--")
    assert sep and scenario, "name events <EventName>--<scenario>.json"
    # the EventBridge envelope, as `sam local invoke -e` passes it to the handler
    assert {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    } <= set(event)
    assert (event["account"], event["region"]) == (ACCOUNT, REGION)
    if event_name == "Malformed":
        with pytest.raises(MalformedEvent):
            parse_event(event)
        return
    if event_name == "SecurityHubCustomAction":
        # Not a CloudTrail call: Security Hub's "Findings - Custom Action" event (issue 11),
        # parsed by the undo's own edge; its one resource is the action's ARN.
        from perimeter.restore.undo import CUSTOM_ACTION_DETAIL_TYPE, parse

        assert (event["source"], event["detail-type"]) == ("aws.securityhub", CUSTOM_ACTION_DETAIL_TYPE)
        assert event["resources"] == [f"arn:aws:securityhub:{REGION}:{ACCOUNT}:action/custom/PerimeterUndo"]
        findings, _actor, _ = parse(event)
        assert findings and all(f["ProductFields"].get("perimeter/audit_id") for f in findings)
        with pytest.raises(MalformedEvent):
            parse_event(event)  # and the CloudTrail edge refuses it
        return
    assert event["detail-type"] == CLOUDTRAIL_DETAIL_TYPE
    assert event["detail"]["eventName"] == event_name
    call = parse_event(event)
    assert (call.event_name, call.account, call.region) == (event_name, ACCOUNT, REGION)
    assert event["source"] == "aws." + call.event_source.split(".amazonaws.com")[0]


SG = {
    p.name: p
    for p in SAMPLES
    if p.name.split("--")[0]
    in (
        "AuthorizeSecurityGroupIngress",
        "AuthorizeSecurityGroupEgress",
        "ModifySecurityGroupRules",
        "CreateSecurityGroup",
    )
}

# sample -> (skip reason fragment or None, [(egress, protocol, from, to, cidr, rule id)] or "whole group")
EXPECTED: dict[str, tuple[str | None, Any]] = {
    "AuthorizeSecurityGroupIngress--world-ssh.json": (
        None,
        [(False, "tcp", 22, 22, "0.0.0.0/0", "sgr-0a1b2c3d4e5f60001")],
    ),
    "AuthorizeSecurityGroupIngress--world-all-ipv6.json": (
        None,
        [(False, "-1", -1, -1, "::/0", "sgr-0a1b2c3d4e5f60002")],
    ),
    "AuthorizeSecurityGroupIngress--wide-cidr-8080.json": (
        None,
        [(False, "tcp", 8080, 8080, "52.0.0.0/8", "sgr-0a1b2c3d4e5f60003")],
    ),
    "AuthorizeSecurityGroupIngress--harmless-https-from-vpc.json": (
        None,
        [(False, "tcp", 443, 443, "10.0.0.0/16", "sgr-0a1b2c3d4e5f60004")],
    ),
    "AuthorizeSecurityGroupIngress--shorthand-form.json": (
        None,
        [(False, "tcp", 22, 22, "203.0.113.9/0", "sgr-0a1b2c3d4e5f60005")],
    ),
    "AuthorizeSecurityGroupIngress--failed-call.json": ("Client.UnauthorizedOperation", None),
    "AuthorizeSecurityGroupIngress--perimeter-own-role.json": ("perimeter-sg-guard-us-east-1", None),
    "AuthorizeSecurityGroupEgress--model-tier-all-traffic.json": (
        None,
        [(True, "-1", -1, -1, "0.0.0.0/0", "sgr-0a1b2c3d4e5f60008")],
    ),
    "ModifySecurityGroupRules--widen-to-world.json": (
        None,
        [(None, "tcp", 8888, 8888, "0.0.0.0/0", "sgr-0a1b2c3d4e5f60009")],
    ),
    "CreateSecurityGroup--model-tier.json": (None, "whole group"),
}


def test_sg_samples_present() -> None:
    # other paths add their own security-group samples (e.g. the default-SG guard): subset
    assert set(EXPECTED) <= set(SG)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sg_sample_meaning(name: str) -> None:
    reason, rules = EXPECTED[name]
    call = parse_event(sample(name))
    skip = skip_reason(call, SETTINGS)
    if reason is not None:
        assert skip is not None and reason in skip
        return
    assert skip is None
    (change,) = extract_group_changes(call)
    if rules == "whole group":
        assert change.whole_group and change.group_tags == {"perimeter:tier": "model", "team": "ml-platform"}
        return
    got = [(r.egress, r.protocol, r.from_port, r.to_port, r.cidr, r.rule_id) for r in change.rules]
    assert got == rules
