"""The edge refuses what the fuzz (tests/safety/test_fuzz.py, long run) found getting past it:
an event id, account or region that is not a short string, EC2 ids that are not ids, and
objects where a flow-log record has lists. Each became a DynamoDB key over 2,048 bytes, a
regular expression in an EC2 filter, or an AttributeError, instead of ``MalformedEvent``."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from perimeter.core.events import MalformedEvent, ec2_id, parse_event
from perimeter.default_groups.plan import extract_subjects
from perimeter.flow_logs.service import created_flow_logs, created_vpc_id

EVENTS = Path(__file__).resolve().parents[2] / "events"


def sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("eventID", ["5ebcd53a-4249-452a-b303-007834721af7"] * 80, "eventID must be a string"),
        ("eventID", "x" * 3000, "eventID is 3000 characters long"),
        ("recipientAccountId", {"id": "123456789012"}, "recipientAccountId must be a string"),
        ("awsRegion", ["us-east-1"], "awsRegion must be a string"),
    ],
)
def test_a_record_field_that_is_not_a_short_string_is_malformed(field: str, value: Any, message: str) -> None:
    event = sample("AuthorizeSecurityGroupIngress--world-ssh.json")
    event["detail"][field] = value
    with pytest.raises(MalformedEvent, match=message):
        parse_event(event)


def test_the_samples_still_parse() -> None:
    for path in sorted(EVENTS.glob("*.json")):
        event = json.loads(path.read_text())
        if event.get("detail-type") == "AWS API Call via CloudTrail":
            assert parse_event(event).event_name


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("sg-0a1b2c3d4e5f60001", True),
        ("sg-12345678", True),
        ("eni-0abc", True),
        ("sg-[g-0]", False),
        ("sg-", False),
        ("vpc-0abc", False),
        (["sg-0a1b2c3d4e5f60001"], False),
        ({"content": "sg-0a1b"}, False),
    ],
)
def test_ec2_ids_from_events_are_checked(value: Any, ok: bool) -> None:
    prefix = "eni" if str(value).startswith("eni") else "sg"
    if ok:
        assert ec2_id(value, prefix, "here") == value
    else:
        with pytest.raises(MalformedEvent, match=f"is not a {prefix}- id"):
            ec2_id(value, prefix, "here")


def test_a_default_sg_event_naming_a_list_as_its_group_is_malformed() -> None:
    event = sample("ModifySecurityGroupRules--default-sg-widen.json")
    req = event["detail"]["requestParameters"]["ModifySecurityGroupRulesRequest"]
    req["GroupId"] = [copy.deepcopy(req["GroupId"])] * 3
    with pytest.raises(MalformedEvent, match="is not a sg- id"):
        extract_subjects(parse_event(event))


def test_a_flow_log_record_with_a_list_where_its_request_object_is_is_malformed() -> None:
    event = sample("CreateFlowLogs--vpc-all-traffic.json")
    event["detail"]["requestParameters"] = {"CreateFlowLogsRequest": [{"ResourceId": "vpc-1"}]}
    with pytest.raises(MalformedEvent, match="CreateFlowLogsRequest must be an object"):
        created_flow_logs(parse_event(event))
    vpc = sample("CreateVpc--new-vpc.json")
    vpc["detail"]["responseElements"] = {"CreateVpcResponse": [{"vpc": {"vpcId": "vpc-1"}}]}
    with pytest.raises(MalformedEvent, match="CreateVpcResponse must be an object"):
        created_vpc_id(parse_event(vpc))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("policyArn", "arn:", "is not a policy ARN"),
        ("policyArn", ["arn:aws:iam::123456789012:policy/x"], "is not a policy ARN"),
        ("roleName", None, "is not an IAM name"),
        ("roleName", "a role", "is not an IAM name"),
        ("roleName", "r" * 65, "is not an IAM name"),
    ],
)
def test_iam_names_and_policy_arns_from_events_are_checked(key: str, value: Any, message: str) -> None:
    from perimeter.iam import service

    check = service._policy_arn if key == "policyArn" else (lambda r: service._name(r, key, 64))
    with pytest.raises(MalformedEvent, match=message):
        check({key: value})
    good = "arn:aws:iam::123456789012:policy/invoke-models" if key == "policyArn" else "app-backend"
    assert check({key: good}) == good
