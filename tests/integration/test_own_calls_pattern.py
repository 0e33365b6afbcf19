"""Perimeter's own calls invoke nothing (issue 11, item 5): the rules drop them, not only the handlers.

Perimeter's remediation comes back through CloudTrail. The handlers' loop guard
(``perimeter.core.guard.skip_reason``) ignores a call made by one of ``PERIMETER_SELF_ROLES`` in the
deployment's account; each CloudTrail rule now drops the same calls before they cost an
invocation, with an ``$or`` on ``detail.userIdentity.sessionContext.sessionIssuer.arn``:
absent (IAM users, root, AWS services: no role session) or anything but Perimeter's roles.

A pattern on a field needs the field to exist (``anything-but`` alone would drop every call
without a role session), so each rule is tested against a real matcher, moto's
``EventPattern`` (and delivery through moto's EventBridge to SQS), and against the local
runner's matcher, with five actors: one of Perimeter's roles (dropped), a person's role, an IAM
user (API keys, and a console session whose ``sessionIssuer`` is empty), root and an AWS service
(all routed). Organization mode too: the security stack's rules on the organization bus, and the
member stack's forwarding rules, which keep the remediation role's calls in the member account.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import boto3
import botocore.session
import pytest
from moto import mock_aws
from moto.events.models import EventPattern
from perimeter.core.accounts import member_role_arn
from perimeter.core.events import parse_event
from perimeter.core.guard import skip_reason
from perimeter.core.runtime import Settings
from perimeter_local.patterns import matches, validate
from perimeter_local.template import Resolver

from tests.integration.test_member_stack import HOME, MEMBER, MEMBER_PARAMS, TEMPLATE, _resolve

ACCOUNT, MEMBER_ACCOUNT = "123456789012", "222222222222"
ORG_PARAMS = {"Mode": "organization", "OrganizationId": "o-exampleorg1", "ExternalId": "example-external-id"}
SESSION = {"attributes": {"creationDate": "2026-06-01T09:58:00Z", "mfaAuthenticated": "false"}}


def role_identity(role_arn: str, session: str = "s") -> dict[str, Any]:
    account, name = role_arn.split(":")[4], role_arn.rsplit("/", 1)[1]
    return {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLE:{session}",
        "arn": f"arn:aws:sts::{account}:assumed-role/{name}/{session}",
        "accountId": account,
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAEXAMPLE",
                "arn": role_arn,
                "accountId": account,
                "userName": name,
            },
            **SESSION,
        },
    }


def others(account: str) -> dict[str, dict[str, Any]]:
    """Actors whose calls must reach the functions."""
    return {
        "person": role_identity(f"arn:aws:iam::{account}:role/SecOps", "rita"),
        "iam-user": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLE",
            "arn": f"arn:aws:iam::{account}:user/alice",
            "accountId": account,
            "accessKeyId": "AKIAEXAMPLE",
            "userName": "alice",
        },
        # a console session of an IAM user: CloudTrail writes an empty sessionIssuer
        "iam-user-console": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLE",
            "arn": f"arn:aws:iam::{account}:user/alice",
            "accountId": account,
            "userName": "alice",
            "sessionContext": {"sessionIssuer": {}, "webIdFederationData": {}, **SESSION},
        },
        "root": {
            "type": "Root",
            "principalId": account,
            "arn": f"arn:aws:iam::{account}:root",
            "accountId": account,
        },
        "aws-service": {"type": "AWSService", "invokedBy": "sagemaker.amazonaws.com"},
    }


def cloudtrail_event(
    pattern: Mapping[str, Any], identity: Mapping[str, Any], account: str, region: str
) -> dict[str, Any]:
    """A successful call the pattern names (its first eventSource and eventName), by ``identity``."""
    return {
        "version": "0",
        "id": "6f1b2e0c-0000-4000-8000-000000000001",
        "detail-type": "AWS API Call via CloudTrail",
        "source": pattern["source"][0],
        "account": account,
        "time": "2026-06-01T10:00:00Z",
        "region": region,
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": dict(identity),
            "eventTime": "2026-06-01T10:00:00Z",
            "eventSource": pattern["detail"]["eventSource"][0],
            "eventName": pattern["detail"]["eventName"][0],
            "awsRegion": region,
            "sourceIPAddress": "203.0.113.10",
            "userAgent": "aws-cli/2.15.0",
            "requestParameters": {},
            "responseElements": None,
            "eventID": "0b9c1f7e-0000-4000-8000-000000000002",
            "eventType": "AwsApiCall",
            "recipientAccountId": account,
        },
    }


def security_rules(
    params: Mapping[str, str],
) -> Iterator[tuple[str, str, dict[str, Any], dict[str, str], Any]]:
    """(function, rule, resolved pattern, function environment, EventBusName) of each CloudTrail rule."""
    r = _resolve(TEMPLATE, params, ACCOUNT, HOME)
    glob = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]
    for logical_id, res in TEMPLATE["Resources"].items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        env = {**glob, **res["Properties"].get("Environment", {}).get("Variables", {})}
        for event_id, ev in res["Properties"].get("Events", {}).items():
            p = ev["Properties"].get("Pattern") if ev["Type"] == "EventBridgeRule" else None
            if p and p.get("detail-type") == ["AWS API Call via CloudTrail"]:
                yield (
                    logical_id,
                    event_id,
                    r.resolve(p),
                    {k: str(v) for k, v in r.resolve(env).items()},
                    r.resolve(ev["Properties"].get("EventBusName", "default")),
                )


def member_rules(account: str, region: str) -> Iterator[tuple[str, dict[str, Any], Resolver]]:
    r = _resolve(MEMBER, MEMBER_PARAMS, account, region)
    for logical_id, res in MEMBER["Resources"].items():
        if res["Type"] == "AWS::Events::Rule":
            yield logical_id, r.resolve(res["Properties"]["EventPattern"]), r


SECURITY_RULES = list(security_rules({}))
ORG_RULES = list(security_rules(ORG_PARAMS))
MEMBER_RULES = list(member_rules(MEMBER_ACCOUNT, "eu-west-1"))


def routed(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """moto's matcher and the local runner's must agree; the answer is theirs."""
    validate(pattern)
    moto_says = EventPattern(json.dumps(pattern), dict(pattern)).matches_event(dict(event))
    local_says = matches(pattern, event)
    assert moto_says == local_says, (moto_says, local_says)
    return moto_says


def self_role_arns(env: Mapping[str, str], account: str = ACCOUNT) -> set[str]:
    return {f"arn:aws:iam::{account}:role/{r}" for r in env["PERIMETER_SELF_ROLES"].split(",")}


def _excluded(pattern: Mapping[str, Any]) -> set[str]:
    """The role ARNs a pattern's actor clause drops."""
    branches = pattern["detail"]["$or"]
    out: set[str] = set()
    for b in branches:
        test = b["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"][0]
        out |= set(test.get("anything-but", []))
    return out


@pytest.mark.parametrize("rules", [SECURITY_RULES, ORG_RULES], ids=["account", "organization"])
def test_each_rule_drops_exactly_the_roles_the_loop_guard_ignores(rules: list[Any]) -> None:
    assert len(rules) >= 8
    for fn, rule, pattern, env, _bus in rules:
        assert _excluded(pattern) == self_role_arns(env), (fn, rule)


@pytest.mark.parametrize("rules", [SECURITY_RULES, ORG_RULES], ids=["account", "organization"])
def test_perimeters_own_calls_are_dropped_and_everyone_elses_routed(rules: list[Any]) -> None:
    for fn, rule, pattern, env, _bus in rules:
        settings = Settings.from_env({**env, "AWS_REGION": HOME})
        for arn in sorted(self_role_arns(env)):
            event = cloudtrail_event(pattern, role_identity(arn), ACCOUNT, HOME)
            assert not routed(pattern, event), (fn, rule, arn)
            # the handler's guard ignores the very same call: one definition of "our own"
            assert "Perimeter's own role" in (skip_reason(parse_event(event), settings) or ""), (fn, arn)
        for who, identity in others(ACCOUNT).items():
            event = cloudtrail_event(pattern, identity, ACCOUNT, HOME)
            assert routed(pattern, event), (fn, rule, who)
            assert skip_reason(parse_event(event), settings) is None, (fn, who)
        # the same role name in another account is not ours: routed (the guard judges it too)
        name = sorted(self_role_arns(env))[0].rsplit("/", 1)[1]
        event = cloudtrail_event(
            pattern, role_identity(f"arn:aws:iam::{MEMBER_ACCOUNT}:role/{name}"), ACCOUNT, HOME
        )
        assert routed(pattern, event), (fn, rule)


def test_organization_mode_keeps_its_bus_and_its_patterns() -> None:
    assert {b for *_, b in SECURITY_RULES} == {"default"}
    assert {b for *_, b in ORG_RULES} == {"OrganizationEventBus"}  # the bus members forward to
    assert [p for _, _, p, _, _ in SECURITY_RULES] == [p for _, _, p, _, _ in ORG_RULES]


def test_member_forwarding_keeps_the_remediation_roles_calls_at_home() -> None:
    assert len(MEMBER_RULES) == 4
    own = member_role_arn("aws", MEMBER_ACCOUNT, MEMBER_PARAMS["MemberRoleName"], "eu-west-1")
    for name, pattern, _ in MEMBER_RULES:
        assert _excluded(pattern) == {own}, name
        assert not routed(
            pattern, cloudtrail_event(pattern, role_identity(own), MEMBER_ACCOUNT, "eu-west-1")
        ), name
        for who, identity in others(MEMBER_ACCOUNT).items():
            event = cloudtrail_event(pattern, identity, MEMBER_ACCOUNT, "eu-west-1")
            assert routed(pattern, event), (name, who)
        # another region's remediation role is not this region's guard's own: forwarded
        other = member_role_arn("aws", MEMBER_ACCOUNT, MEMBER_PARAMS["MemberRoleName"], "us-east-1")
        assert routed(pattern, cloudtrail_event(pattern, role_identity(other), MEMBER_ACCOUNT, "eu-west-1"))


def test_the_patterns_fit_eventbridges_limit_with_the_longest_names() -> None:
    """PutRule's EventPattern holds at most 4,096 characters (botocore's model): with the
    longest role names IAM allows (64) and a long partition, every pattern still fits."""
    limit = 4096
    model = botocore.session.get_session().get_service_model("events")
    assert model.operation_model("PutRule").input_shape.members["EventPattern"].metadata["max"] == limit
    for fn, rule, pattern, env, _bus in SECURITY_RULES:
        longest = dict(pattern)
        arns = [f"arn:aws-us-gov:iam::{ACCOUNT}:role/{'r' * 64}"] * len(self_role_arns(env))
        detail = dict(longest["detail"])
        detail["$or"] = [
            detail["$or"][0],
            {"userIdentity": {"sessionContext": {"sessionIssuer": {"arn": [{"anything-but": arns}]}}}},
        ]
        longest["detail"] = detail
        assert len(json.dumps(longest, separators=(",", ":"))) < limit, (fn, rule)


def test_moto_eventbridge_delivers_a_persons_call_and_not_perimeters(monkeypatch: pytest.MonkeyPatch) -> None:
    """End to end through moto's EventBridge: each rule with an SQS target."""
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": HOME,
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        events, sqs = boto3.client("events"), boto3.client("sqs")
        for i, (fn, rule, pattern, env, _bus) in enumerate(SECURITY_RULES):
            url = sqs.create_queue(QueueName=f"q{i}")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            events.put_rule(Name=f"r{i}", EventPattern=json.dumps(pattern))
            events.put_targets(Rule=f"r{i}", Targets=[{"Id": "q", "Arn": arn}])
            own = sorted(self_role_arns(env))
            actors = [role_identity(a) for a in own] + list(others(ACCOUNT).values())
            for identity in actors:
                e = cloudtrail_event(pattern, identity, ACCOUNT, HOME)
                events.put_events(
                    Entries=[
                        {
                            "Source": e["source"],
                            "DetailType": e["detail-type"],
                            "Detail": json.dumps(e["detail"]),
                        }
                    ]
                )
            got = []
            while msgs := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
                for m in msgs:
                    got.append(json.loads(m["Body"])["detail"]["userIdentity"].get("type"))
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            assert sorted(got) == sorted(i.get("type") for i in others(ACCOUNT).values()), (fn, rule)
            events.remove_targets(Rule=f"r{i}", Ids=["q"])
            events.delete_rule(Name=f"r{i}")
