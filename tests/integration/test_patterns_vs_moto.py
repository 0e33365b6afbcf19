"""Cross-check perimeter_local.patterns against moto's EventBridge.

For each (pattern, event) pair below, a rule with the pattern routes to an SQS
queue under ``moto.mock_aws``; the event is put on the default bus and we
compare "was it delivered" with ``matches(pattern, event)`` and with the
expected outcome written in the table.

The table only uses features where moto is known to be right. Known moto gaps,
deliberately left out: patterns over arrays of objects never match in moto,
and the event delivered to the target lacks ``account`` (moto also matches
``time`` as a Unix timestamp, so no patterns on ``time`` either).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from perimeter_local.patterns import matches

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account

SOURCE = "aws.s3"
DETAIL_TYPE = "AWS API Call via CloudTrail"
DETAIL: dict[str, Any] = {
    "eventSource": "s3.amazonaws.com",
    "eventName": "PutBucketPolicy",
    "awsRegion": "us-east-1",
    "sourceIPAddress": "10.0.0.33",
    "ipv6": "2001:db8::7",
    "requestParameters": {"bucketName": "data-bucket", "size": 42},
    "tags": ["prod", "pci"],
    "readOnly": False,
    "nothing": None,
}
FAILED_DETAIL = {**DETAIL, "errorCode": "AccessDenied"}


# (id, pattern, detail, expected)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], bool]] = [
    ("source", {"source": [SOURCE]}, DETAIL, True),
    ("source-miss", {"source": ["aws.ec2"]}, DETAIL, False),
    ("source-list", {"source": ["aws.ec2", SOURCE]}, DETAIL, True),
    ("detail-type", {"detail-type": [DETAIL_TYPE]}, DETAIL, True),
    ("detail-type-miss", {"detail-type": ["Object Created"]}, DETAIL, False),
    (
        "event-source-and-name",
        {
            "source": [SOURCE],
            "detail": {
                "eventSource": ["s3.amazonaws.com"],
                "eventName": ["PutBucketPolicy", "DeleteBucketPolicy"],
            },
        },
        DETAIL,
        True,
    ),
    (
        "event-name-miss",
        {
            "detail": {
                "eventSource": ["s3.amazonaws.com"],
                "eventName": ["CreateBucket"],
            }
        },
        DETAIL,
        False,
    ),
    ("missing-field", {"detail": {"userAgent": ["console"]}}, DETAIL, False),
    (
        "nested",
        {"detail": {"requestParameters": {"bucketName": ["data-bucket"]}}},
        DETAIL,
        True,
    ),
    ("null", {"detail": {"nothing": [None]}}, DETAIL, True),
    ("boolean", {"detail": {"readOnly": [False]}}, DETAIL, True),
    ("boolean-miss", {"detail": {"readOnly": [True]}}, DETAIL, False),
    ("array-of-strings", {"detail": {"tags": ["pci"]}}, DETAIL, True),
    ("array-of-strings-miss", {"detail": {"tags": ["dev"]}}, DETAIL, False),
    ("error-code-absent", {"detail": {"errorCode": [{"exists": False}]}}, DETAIL, True),
    (
        "error-code-present",
        {"detail": {"errorCode": [{"exists": False}]}},
        FAILED_DETAIL,
        False,
    ),
    (
        "error-code-exists",
        {"detail": {"errorCode": [{"exists": True}]}},
        FAILED_DETAIL,
        True,
    ),
    (
        "error-code-exists-miss",
        {"detail": {"errorCode": [{"exists": True}]}},
        DETAIL,
        False,
    ),
    ("prefix", {"detail": {"eventName": [{"prefix": "PutBucket"}]}}, DETAIL, True),
    ("prefix-miss", {"detail": {"eventName": [{"prefix": "Delete"}]}}, DETAIL, False),
    ("suffix", {"detail": {"eventName": [{"suffix": "Policy"}]}}, DETAIL, True),
    (
        "equals-ignore-case",
        {"detail": {"eventName": [{"equals-ignore-case": "putbucketpolicy"}]}},
        DETAIL,
        True,
    ),
    (
        "anything-but",
        {"detail": {"eventName": [{"anything-but": "DeleteBucket"}]}},
        DETAIL,
        True,
    ),
    (
        "anything-but-miss",
        {"detail": {"eventName": [{"anything-but": "PutBucketPolicy"}]}},
        DETAIL,
        False,
    ),
    (
        "anything-but-list",
        {"detail": {"eventName": [{"anything-but": ["GetObject", "PutBucketPolicy"]}]}},
        DETAIL,
        False,
    ),
    (
        "anything-but-prefix",
        {"detail": {"eventName": [{"anything-but": {"prefix": "Get"}}]}},
        DETAIL,
        True,
    ),
    (
        "anything-but-prefix-miss",
        {"detail": {"eventName": [{"anything-but": {"prefix": "Put"}}]}},
        DETAIL,
        False,
    ),
    (
        "anything-but-number",
        {"detail": {"requestParameters": {"size": [{"anything-but": 42}]}}},
        DETAIL,
        False,
    ),
    (
        "numeric-range",
        {"detail": {"requestParameters": {"size": [{"numeric": [">", 0, "<=", 42]}]}}},
        DETAIL,
        True,
    ),
    (
        "numeric-range-miss",
        {"detail": {"requestParameters": {"size": [{"numeric": [">=", 43]}]}}},
        DETAIL,
        False,
    ),
    (
        "numeric-eq",
        {"detail": {"requestParameters": {"size": [{"numeric": ["=", 42]}]}}},
        DETAIL,
        True,
    ),
    (
        "numeric-on-string",
        {"detail": {"eventName": [{"numeric": [">", 0]}]}},
        DETAIL,
        False,
    ),
    ("cidr", {"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]}}, DETAIL, True),
    (
        "cidr-miss",
        {"detail": {"sourceIPAddress": [{"cidr": "192.168.0.0/16"}]}},
        DETAIL,
        False,
    ),
    ("cidr-v6", {"detail": {"ipv6": [{"cidr": "2001:db8::/32"}]}}, DETAIL, True),
    (
        "or-top",
        {
            "$or": [
                {"source": ["aws.ec2"]},
                {"detail": {"eventName": ["PutBucketPolicy"]}},
            ]
        },
        DETAIL,
        True,
    ),
    (
        "or-top-miss",
        {"$or": [{"source": ["aws.ec2"]}, {"detail": {"eventName": ["GetObject"]}}]},
        DETAIL,
        False,
    ),
    (
        "or-in-detail",
        {
            "source": [SOURCE],
            "detail": {
                "$or": [
                    {"errorCode": [{"exists": True}]},
                    {"eventName": [{"prefix": "Put"}]},
                ]
            },
        },
        DETAIL,
        True,
    ),
    (
        "or-in-detail-miss",
        {
            "source": [SOURCE],
            "detail": {
                "$or": [
                    {"errorCode": [{"exists": True}]},
                    {"eventName": [{"prefix": "Get"}]},
                ]
            },
        },
        DETAIL,
        False,
    ),
]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any, str, str]]:
    """moto-backed (events, sqs) clients and a queue; no real AWS is reached."""
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        events = boto3.client("events", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="pattern-probe")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        yield events, sqs, url, arn


def deliver(
    aws: tuple[Any, Any, str, str], pattern: dict[str, Any], detail: dict[str, Any]
) -> list[dict[str, Any]]:
    """Route ``detail`` through a moto rule with ``pattern``; return delivered events."""
    events, sqs, url, arn = aws
    events.put_rule(Name="probe", EventPattern=json.dumps(pattern), State="ENABLED")
    events.put_targets(Rule="probe", Targets=[{"Id": "queue", "Arn": arn}])
    sent = events.put_events(
        Entries=[
            {
                "Source": SOURCE,
                "DetailType": DETAIL_TYPE,
                "Detail": json.dumps(detail),
                "Resources": ["arn:aws:s3:::data-bucket"],
            }
        ]
    )
    assert sent["FailedEntryCount"] == 0
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [json.loads(m["Body"]) for m in received.get("Messages", [])]


def full_event(detail: dict[str, Any]) -> dict[str, Any]:
    """The event as EventBridge presents it to rules."""
    return {
        "version": "0",
        "id": "11111111-2222-3333-4444-555555555555",
        "detail-type": DETAIL_TYPE,
        "source": SOURCE,
        "account": ACCOUNT,
        "time": "2024-01-01T00:00:00Z",
        "region": REGION,
        "resources": ["arn:aws:s3:::data-bucket"],
        "detail": detail,
    }


@pytest.mark.parametrize(("pattern", "detail", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_matches_agrees_with_moto(
    aws: tuple[Any, Any, str, str],
    pattern: dict[str, Any],
    detail: dict[str, Any],
    expected: bool,
) -> None:
    delivered = deliver(aws, pattern, detail)
    assert len(delivered) <= 1
    assert (len(delivered) == 1) is expected, "moto disagrees with the table"
    assert matches(pattern, full_event(detail)) is expected, "matcher disagrees with the table"
    if delivered:
        # what moto delivered is itself an event the pattern matches
        assert matches(pattern, delivered[0])
        assert delivered[0]["detail"] == detail


def test_case_table_has_both_outcomes() -> None:
    outcomes = [c[3] for c in CASES]
    assert outcomes.count(True) >= 10 and outcomes.count(False) >= 10


def test_moto_delivery_lacks_account(aws: tuple[Any, Any, str, str]) -> None:
    """Documents the gap that keeps ``account`` out of the table above."""
    delivered = deliver(aws, {"source": [SOURCE]}, DETAIL)
    assert len(delivered) == 1
    assert "account" not in delivered[0]
