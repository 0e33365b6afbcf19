"""Every security-group record of the real corpus, parsed and extracted to the exact rules it
added; the wrapped ModifySecurityGroupRules form; malformed records fail with a clear message."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from perimeter.core.events import MalformedEvent, parse_event, wrap_in_envelope
from perimeter.core.rules import Rule
from perimeter.security_groups.changes import GroupChange, extract_group_changes

from tests.corpus import load, records

SG_EVENTS = ("AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress", "CreateSecurityGroup")

# record -> (account, region, event id, actor role name, [GroupChange])
EXPECTED: dict[str, tuple[str, str, str, str | None, list[GroupChange]]] = {
    "AuthorizeSecurityGroupIngress/panther-1.json": (
        "112233445566",
        "us-west-2",
        "504b492f-7832-406b-a4fd-45a13e48adc4",
        "TestAdmin",  # from Panther's lower-cased sessioncontext.sessionissuer.username
        [
            GroupChange(
                "sg-04f0b44316f7d2471", (Rule("sg-04f0b44316f7d2471", False, "tcp", 443, 443, "0.0.0.0/16"),)
            )
        ],
    ),
    "AuthorizeSecurityGroupIngress/panther-2.json": (
        "112233445566",
        "us-east-1",
        "42155429-7e8e-43b5-9b5e-6953f80d51d5",
        "Operator",
        [
            GroupChange(
                "sg-0d921df5d84f7270a", (Rule("sg-0d921df5d84f7270a", False, "tcp", 22, 22, "0.0.0.0/0"),)
            )
        ],
    ),
    "AuthorizeSecurityGroupIngress/panther-3.json": (
        "123456789012",
        "us-west-2",
        "1",
        "tester",
        [
            GroupChange(
                "sg-1", (Rule("sg-1", False, "tcp", 22, 22, "127.0.0.1/32", description="SSH for me"),)
            )
        ],
    ),
    "AuthorizeSecurityGroupIngress/reflex-1.json": (
        "000000000000",  # no recipientAccountId: the envelope's account
        "us-east-1",
        "ed02a212-5eff-4bf6-b5b3-8939726568e9",
        None,
        [
            GroupChange(
                "sg-00000bd0bf00f0000",
                (
                    Rule("sg-00000bd0bf00f0000", False, "tcp", 55, 55, "0.0.0.0/0"),
                    Rule("sg-00000bd0bf00f0000", False, "tcp", 55, 55, "::/0", ipv6=True),
                ),
            )
        ],
    ),
    "AuthorizeSecurityGroupIngress/stratus-1.json": (
        "032092706103",
        "us-northeast-1r",
        "9fd68588-ecbf-4528-a345-199fa6bb0821",
        None,
        [
            GroupChange(
                "sg-003dc7f1f1c686164",
                (
                    Rule(
                        "sg-003dc7f1f1c686164",
                        False,
                        "tcp",
                        22,
                        22,
                        "208.236.235.254/0",
                        rule_id="sgr-09b3e3d2ca1edf2a2",
                    ),
                ),
            )
        ],
    ),
    "AuthorizeSecurityGroupIngress/streamalert-1.json": (
        "12345",
        "...",
        "...",
        None,
        [
            GroupChange(
                "...",
                (
                    Rule("...", False, "-1", None, None, "0.0.0.0/0", description="..."),
                    Rule("...", False, "-1", None, None, "::/0", ipv6=True, description="..."),
                ),
            )
        ],
    ),
    "AuthorizeSecurityGroupEgress/panther-1.json": (
        "112233445566",
        "us-east-1",
        "1a593035-e072-49c4-8c72-4ff35e195330",
        "Operator",
        [
            GroupChange(
                "sg-03eee825d6bb78f54",
                (
                    Rule(
                        "sg-03eee825d6bb78f54",
                        True,
                        "-1",
                        None,
                        None,
                        "0.0.0.0/0",
                        description=(
                            "Allow egress to the internet. Required for now until we land ECS/ECR "
                            "endpoints in the VPC"
                        ),
                    ),
                ),
            )
        ],
    ),
    "CreateSecurityGroup/panther-1.json": (
        "112233445566",
        "us-east-1",
        "52601748-2659-4ed8-b5fd-c530547b07ec",
        "Operator",
        [GroupChange("sg-04d018d184a18f647", (), whole_group=True, vpc_id="vpc-a1a044c7", group_tags={})],
    ),
    "CreateSecurityGroup/reflex-1.json": (
        "000000000000",
        "us-east-1",
        "b9af23b1-b83b-4c56-80b0-57e73c445ed0",
        None,
        [GroupChange("sg-000000c0d00fd0aed", (), whole_group=True, vpc_id="vpc-0000000e", group_tags={})],
    ),
}

CORPUS = records(*SG_EVENTS)


def test_every_sg_record_has_an_expectation() -> None:
    assert sorted(name for name, _ in CORPUS) == sorted(EXPECTED)


@pytest.mark.parametrize(("name", "record"), CORPUS, ids=[n for n, _ in CORPUS])
def test_corpus_record_extracts_exact_rules(name: str, record: dict[str, Any]) -> None:
    account, region, event_id, role, changes = EXPECTED[name]
    for form in (record, wrap_in_envelope(record)):  # bare record and EventBridge envelope alike
        call = parse_event(form)
        assert (call.account, call.region, call.event_id) == (account, region, event_id)
        assert call.actor.role_name == role
        assert not call.failed
        assert extract_group_changes(call) == changes


def test_shorthand_world_with_host_bits_is_the_world() -> None:
    call = parse_event(load("AuthorizeSecurityGroupIngress/stratus-1.json"))
    (rule,) = extract_group_changes(call)[0].rules
    assert rule.canonical_peer == "0.0.0.0/0"
    assert rule.describe() == "tcp/22 from 208.236.235.254/0"


def test_shorthand_without_response_reads_top_level_fields() -> None:
    record = load("AuthorizeSecurityGroupIngress/stratus-1.json")
    del record["responseElements"]["securityGroupRuleSet"]
    (change,) = extract_group_changes(parse_event(record))
    assert change.rules == (Rule("sg-003dc7f1f1c686164", False, "tcp", 22, 22, "208.236.235.254/0"),)


def test_request_rules_missing_from_response_are_kept() -> None:
    """The response lists what AWS created; a request rule it omits (moto lists only the last
    permission's rules) is still judged, by content."""
    record = load("AuthorizeSecurityGroupIngress/reflex-1.json")
    record["detail"]["responseElements"]["securityGroupRuleSet"] = {
        "items": [
            {
                "groupId": "sg-00000bd0bf00f0000",
                "isEgress": False,
                "ipProtocol": "tcp",
                "fromPort": 55,
                "toPort": 55,
                "cidrIpv6": "::/0",
                "securityGroupRuleId": "sgr-0v6",
            }
        ]
    }
    (change,) = extract_group_changes(parse_event(record))
    assert [(r.cidr, r.rule_id) for r in change.rules] == [("::/0", "sgr-0v6"), ("0.0.0.0/0", None)]


def test_group_named_by_name_takes_the_id_from_the_response() -> None:
    record = load("AuthorizeSecurityGroupIngress/stratus-1.json")
    record["requestParameters"]["groupName"] = record["requestParameters"].pop("groupId")
    record["requestParameters"]["groupName"] = "default"
    (change,) = extract_group_changes(parse_event(record))
    assert change.group_id == "sg-003dc7f1f1c686164"


def test_panther_string_ports_and_lowercase_identity() -> None:
    call = parse_event(load("AuthorizeSecurityGroupIngress/panther-1.json"))
    assert call.actor.arn == "arn:aws:sts::112233445566:assumed-role/TestAdmin/alan"
    assert call.actor.account_id == "112233445566"
    assert call.actor.principal_id == "ARORJ4ULULLE0EEJAAKDO:alan"
    (rule,) = extract_group_changes(call)[0].rules
    assert (rule.from_port, rule.to_port) == (443, 443)
    assert isinstance(rule.from_port, int)


def test_create_group_reads_tags() -> None:
    record = load("CreateSecurityGroup/panther-1.json")
    record["requestParameters"]["tagSpecificationSet"] = {
        "items": [
            {
                "resourceType": "security-group",
                "tags": {"items": [{"key": "perimeter:tier", "value": "model"}, {"key": "team"}]},
            }
        ]
    }
    (change,) = extract_group_changes(parse_event(record))
    assert change.group_tags == {"perimeter:tier": "model", "team": ""}


# --- ModifySecurityGroupRules, wrapped form ----------------------------------------------------


def w(value: Any, tag: int = 1) -> dict[str, Any]:
    return {"tag": tag, "content": value}


def modify_record(updates: Any) -> dict[str, Any]:
    return {
        "eventVersion": "1.08",
        "eventSource": "ec2.amazonaws.com",
        "eventName": "ModifySecurityGroupRules",
        "awsRegion": "us-east-1",
        "recipientAccountId": "123456789012",
        "eventID": "mod-1",
        "eventTime": "2026-01-01T00:00:00Z",
        "userIdentity": {
            "type": "IAMUser",
            "arn": "arn:aws:iam::123456789012:user/dev",
            "accountId": "123456789012",
        },
        "requestParameters": {
            "ModifySecurityGroupRulesRequest": {
                "GroupId": w("sg-0123456789abcdef0"),
                "SecurityGroupRule": updates,
            }
        },
        "responseElements": {"ModifySecurityGroupRulesResponse": {"return": True}},
    }


def update(rule_id: str, body: dict[str, Any], tag: int = 1) -> dict[str, Any]:
    return {
        "SecurityGroupRuleId": w(rule_id),
        "SecurityGroupRule": {k: w(v, i + 1) for i, (k, v) in enumerate(body.items())},
        "tag": tag,
    }


SSH_WORLD = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIpv4": "0.0.0.0/0", "Description": "x"}
ALL_V6 = {"IpProtocol": "-1", "FromPort": -1, "ToPort": -1, "CidrIpv6": "::/0"}


def test_modify_rules_single_wrapped_update() -> None:
    (change,) = extract_group_changes(parse_event(modify_record(update("sgr-1", SSH_WORLD))))
    assert change == GroupChange(
        "sg-0123456789abcdef0",
        (Rule("sg-0123456789abcdef0", None, "tcp", 22, 22, "0.0.0.0/0", rule_id="sgr-1", description="x"),),
    )


def test_modify_rules_list_of_wrapped_updates() -> None:
    record = modify_record([update("sgr-1", SSH_WORLD, 1), update("sgr-2", ALL_V6, 2)])
    (change,) = extract_group_changes(parse_event(record))
    assert change.rules == (
        Rule("sg-0123456789abcdef0", None, "tcp", 22, 22, "0.0.0.0/0", rule_id="sgr-1", description="x"),
        Rule("sg-0123456789abcdef0", None, "-1", -1, -1, "::/0", ipv6=True, rule_id="sgr-2"),
    )


def test_modify_rules_items_list_and_unwrapped() -> None:
    record = modify_record({"items": [{"SecurityGroupRuleId": "sgr-3", "SecurityGroupRule": SSH_WORLD}]})
    (change,) = extract_group_changes(parse_event(record))
    assert [r.rule_id for r in change.rules] == ["sgr-3"]


# --- malformed ----------------------------------------------------------------------------


def ingress(**over: Any) -> dict[str, Any]:
    record = copy.deepcopy(load("AuthorizeSecurityGroupIngress/panther-2.json"))
    record.update(over)
    return record


MALFORMED: list[tuple[str, Any, str]] = [
    ("not-an-object", ["AuthorizeSecurityGroupIngress"], "event must be a JSON object, got list"),
    ("missing-group-id", ingress(requestParameters={"ipPermissions": {}}), "requestParameters lacks groupId"),
    (
        "permission-not-object",
        ingress(requestParameters={"groupId": "sg-1", "ipPermissions": {"items": ["tcp/22"]}}),
        "ipPermissions item is not an object",
    ),
    (
        "not-cloudtrail-envelope",
        {
            "version": "0",
            "detail-type": "EC2 Instance State-change Notification",
            "source": "aws.ec2",
            "account": "123456789012",
            "region": "us-east-1",
            "detail": {"instance-id": "i-1", "state": "running"},
        },
        "detail-type 'EC2 Instance State-change Notification' is not 'AWS API Call via CloudTrail'",
    ),
    (
        "envelope-detail-not-object",
        {"detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2", "detail": "x"},
        "detail must be a JSON object",
    ),
    (
        "missing-event-name",
        {k: v for k, v in ingress().items() if k != "eventName"},
        "detail lacks eventName",
    ),
    (
        "missing-event-source",
        {k: v for k, v in ingress().items() if k != "eventSource"},
        "detail lacks eventSource",
    ),
    (
        "no-account",
        {k: v for k, v in ingress().items() if k not in ("recipientAccountId", "userIdentity")},
        "no account",
    ),
    ("no-region", {k: v for k, v in ingress().items() if k != "awsRegion"}, "no region"),
    ("request-not-object", ingress(requestParameters=["sg-1"]), "requestParameters must be an object"),
    (
        "unhandled-event",
        ingress(eventName="DeleteSecurityGroup"),
        "no security-group extractor for event 'DeleteSecurityGroup'",
    ),
    (
        "create-without-group-id",
        {**load("CreateSecurityGroup/panther-1.json"), "responseElements": {"_return": True}},
        "CreateSecurityGroup: responseElements lacks groupId",
    ),
    (
        "modify-without-group-id",
        {
            **modify_record(update("sgr-1", SSH_WORLD)),
            "requestParameters": {"ModifySecurityGroupRulesRequest": {}},
        },
        "ModifySecurityGroupRules: request lacks GroupId",
    ),
    (
        "modify-update-without-rule-id",
        modify_record({"SecurityGroupRule": {"IpProtocol": w("tcp")}}),
        "update lacks SecurityGroupRuleId or SecurityGroupRule",
    ),
    ("modify-update-not-object", modify_record(["sgr-1"]), "rule update is not an object"),
]


@pytest.mark.parametrize(("event", "message"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_raises_clear_error(event: Any, message: str) -> None:
    with pytest.raises(MalformedEvent) as info:
        extract_group_changes(parse_event(event))
    assert message in str(info.value)


def test_account_falls_back_to_envelope_then_identity() -> None:
    record = ingress()
    del record["recipientAccountId"]
    assert parse_event(record).account == "112233445566"  # userIdentity.accountId
    env = wrap_in_envelope(record)
    env["account"] = "999999999999"
    env["region"] = "eu-west-1"
    del env["detail"]["awsRegion"]
    call = parse_event(env)
    assert (call.account, call.region) == ("999999999999", "eu-west-1")


def test_failed_call_parses_with_error_code() -> None:
    call = parse_event(ingress(errorCode="Client.UnauthorizedOperation", errorMessage="denied"))
    assert call.failed and call.error_code == "Client.UnauthorizedOperation"
