"""Issue 9 B, the security-group event path, through the real SgGuard handler under moto:

- a request naming the group by ``groupName`` with no rule set in the response is resolved in
  the default VPC (not reported as "group-deleted"), or fails loudly;
- a record whose ``requestParameters`` CloudTrail omitted still names group and rules in
  ``responseElements``;
- ModifySecurityGroupRules names rules by id only: an egress rule whose content matches an
  ingress rule is revoked as egress, and two rules of identical content are two revokes;
- the write-ahead audit record is bounded (DynamoDB refuses items over 400 KB).
"""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import perimeter.core.runtime
import pytest
from moto import mock_aws
from perimeter.adapters.audit import AuditAdapter
from perimeter.core.events import wrap_in_envelope
from perimeter.core.runtime import Runtime, Settings
from perimeter.security_groups import service as sg_service

from tests.corpus import MOTO_ACCOUNT, REGION
from tests.integration.test_sg_handler import DEFAULT_EGRESS, W4, Env, ct_permission, identity, tcp
from tests.integration.test_sg_handler import env as sg_env

env = sg_env  # SgGuard's moto account and handler, shared with test_sg_handler

ALL_WORLD = {"IpProtocol": "-1", "FromPort": -1, "ToPort": -1, "CidrIpv4": W4}
SG4_ENFORCED = "PER-SG-4: {mode: enforce}"


def _event(name: str, request: dict[str, Any] | None, response: dict[str, Any] | None) -> dict[str, Any]:
    return wrap_in_envelope(
        {
            "eventVersion": "1.09",
            "userIdentity": identity(),
            "eventTime": "2026-06-01T10:00:00Z",
            "eventSource": "ec2.amazonaws.com",
            "eventName": name,
            "awsRegion": REGION,
            "requestParameters": request,
            "responseElements": response,
            "eventID": str(uuid.uuid4()),
            "eventType": "AwsApiCall",
            "recipientAccountId": MOTO_ACCOUNT,
        }
    )


def _default_vpc(e: Env) -> str:
    vpcs = e.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    return str(vpcs[0]["VpcId"])


def test_group_named_by_name_is_resolved_in_the_default_vpc(env: Env) -> None:
    default_web = env.ec2.create_security_group(GroupName="web", Description="d", VpcId=_default_vpc(env))
    other_web = env.ec2.create_security_group(GroupName="web", Description="d", VpcId=env.vpc_id)
    for gid in (default_web["GroupId"], other_web["GroupId"]):
        env.ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[tcp(22)])
    event = _event(
        "AuthorizeSecurityGroupIngress",
        {"groupName": "web", "ipPermissions": {"items": [ct_permission(tcp(22))]}},
        {"_return": True},  # an older record: no securityGroupRuleSet
    )
    result = env.invoke(event)
    assert result["status"] == "remediated", result
    assert [g["group_id"] for g in result["groups"]] == [default_web["GroupId"]]
    assert (False, "tcp", 22, 22, W4) not in env.rules(default_web["GroupId"])
    # The same name in another VPC is another group: the request did not touch it.
    assert (False, "tcp", 22, 22, W4) in env.rules(other_web["GroupId"])


def test_group_name_that_resolves_to_nothing_fails_loudly(env: Env) -> None:
    """Lambda retries, then the event lands in the dead-letter queue: never a silent exit 0."""
    event = _event(
        "AuthorizeSecurityGroupIngress",
        {"groupName": "no-such-group", "ipPermissions": {"items": [ct_permission(tcp(22))]}},
        {"_return": True},
    )
    with pytest.raises(sg_service.UnresolvedGroup):
        env.invoke(event)


def test_omitted_request_parameters_use_the_response(env: Env) -> None:
    gid = env.group()
    (rule,) = env.ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[tcp(3389)])[
        "SecurityGroupRules"
    ]
    response = {
        "_return": True,
        "securityGroupRuleSet": {
            "items": [
                {
                    "groupId": gid,
                    "groupOwnerId": MOTO_ACCOUNT,
                    "isEgress": False,
                    "ipProtocol": "tcp",
                    "fromPort": 3389,
                    "toPort": 3389,
                    "cidrIpv4": W4,
                    "securityGroupRuleId": rule["SecurityGroupRuleId"],
                }
            ]
        },
    }
    result = env.invoke(_event("AuthorizeSecurityGroupIngress", None, response))
    assert result["status"] == "remediated", result
    assert result["groups"][0]["revoked"] == [rule["SecurityGroupRuleId"]]
    assert env.rules(gid) == {DEFAULT_EGRESS}


def _msgr(gid: str, updates: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """A ModifySecurityGroupRules record as CloudTrail writes it (no direction anywhere)."""
    return _event(
        "ModifySecurityGroupRules",
        {
            "ModifySecurityGroupRulesRequest": {
                "GroupId": {"tag": 1, "content": gid},
                "SecurityGroupRule": [
                    {
                        "SecurityGroupRuleId": {"tag": 1, "content": rid},
                        "SecurityGroupRule": {
                            k: {"tag": i, "content": v} for i, (k, v) in enumerate(body.items())
                        },
                    }
                    for rid, body in updates
                ],
            }
        },
        {"ModifySecurityGroupRulesResponse": {"return": True}},
    )


@pytest.fixture
def sg4_enforced(env: Env, monkeypatch: pytest.MonkeyPatch) -> Env:
    """The shipped policy with PER-SG-4 (unrestricted egress on a model-tier group) enforced."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "policy" / "default.yaml").read_text()
    assert "PER-SG-4: {mode: detect}" in text
    env.session.client("ssm").put_parameter(
        Name="/perimeter/policy", Value=text.replace("PER-SG-4: {mode: detect}", SG4_ENFORCED), Type="String"
    )
    monkeypatch.setenv("PERIMETER_POLICY_PARAMETER", "/perimeter/policy")
    perimeter.core.runtime.reset(Runtime(Settings.from_env(), session=env.session))
    return env


def _model_group(e: Env) -> str:
    gid = e.group({"perimeter:tier": "model"})
    e.ec2.revoke_security_group_egress(
        GroupId=gid, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": W4}]}]
    )
    return gid


def _add(e: Env, gid: str, *, egress: bool) -> str:
    call = e.ec2.authorize_security_group_egress if egress else e.ec2.authorize_security_group_ingress
    (rule,) = call(GroupId=gid, IpPermissions=[tcp(443, "10.0.0.0/8")])["SecurityGroupRules"]
    return str(rule["SecurityGroupRuleId"])


def _ids_left(e: Env, gid: str) -> set[str]:
    rules = e.ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])
    return {r["SecurityGroupRuleId"] for r in rules["SecurityGroupRules"]}


def test_msgr_on_egress_twin_of_an_ingress_rule_revokes_egress(sg4_enforced: Env) -> None:
    e = sg4_enforced
    gid = _model_group(e)
    ingress = _add(e, gid, egress=False)
    egress = _add(e, gid, egress=True)
    # The ingress rule already reads "all traffic from the world"; now the egress rule is
    # widened to the same content.
    for rid in (ingress, egress):
        e.ec2.modify_security_group_rules(
            GroupId=gid, SecurityGroupRules=[{"SecurityGroupRuleId": rid, "SecurityGroupRule": ALL_WORLD}]
        )
    e.ops()
    result = e.invoke(_msgr(gid, [(egress, ALL_WORLD)]))
    assert result["status"] == "remediated", result
    assert egress in result["groups"][0]["revoked"]
    assert "RevokeSecurityGroupEgress" in e.ops()
    assert egress not in _ids_left(e, gid)


def test_msgr_two_rules_of_identical_content_are_two_revokes(sg4_enforced: Env) -> None:
    e = sg4_enforced
    gid = _model_group(e)
    ingress = _add(e, gid, egress=False)
    egress = _add(e, gid, egress=True)
    e.ec2.modify_security_group_rules(
        GroupId=gid,
        SecurityGroupRules=[
            {"SecurityGroupRuleId": ingress, "SecurityGroupRule": ALL_WORLD},
            {"SecurityGroupRuleId": egress, "SecurityGroupRule": ALL_WORLD},
        ],
    )
    result = e.invoke(_msgr(gid, [(ingress, ALL_WORLD), (egress, ALL_WORLD)]))
    assert result["status"] == "remediated", result
    assert {ingress, egress} <= set(result["groups"][0]["revoked"])
    assert not {ingress, egress} & _ids_left(e, gid)


@pytest.mark.parametrize("rules", [5, 6000])
def test_audit_record_is_bounded_and_reads_back(rules: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A record listing thousands of rules (well over DynamoDB's 400 KB item limit as JSON) is
    written, read back whole, and listed once; a small one stays plain JSON."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(k, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(
            TableName="audit",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        record = {
            "audit_id": "evt-1#sg-1",
            "time": "2026-06-01T10:00:00Z",
            "group_id": "sg-1",
            "rules": [
                {
                    "rule_id": f"sgr-{uuid.uuid4().hex[:17]}",
                    "cidr": f"10.{i // 256 % 256}.{i % 256}.0/24",
                    "description": uuid.uuid4().hex * 2,
                }
                for i in range(rules)
            ],
        }
        import json

        size = len(json.dumps(record))
        assert (size > 400_000) == (rules > 5)
        audit = AuditAdapter(ddb, "audit")
        audit.put(record)
        audit.put(record)  # a retried write-ahead overwrites, never duplicates
        assert audit.get("evt-1#sg-1") == record
        assert audit.scan() == [record]
        head = ddb.get_item(TableName="audit", Key={"pk": {"S": "evt-1#sg-1"}})["Item"]
        assert ("body" in head) == (rules <= 5)
