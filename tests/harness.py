"""What every integration test needs in a moto account: the stack's supporting resources.

Each function's tests build the same things the template gives a deployed function (the audit
and idempotency tables, Security Hub enabled, the findings topic with an SQS subscriber to read
the notifications back) and read the same outputs; this module does it once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def moto_account(monkeypatch: Any, region: str) -> Iterator[None]:
    """An in-process moto account in ``region`` with test credentials, no endpoint override and
    no container state left from another test (before and after)."""
    from moto import mock_aws
    from perimeter_local.invoke import forget_containers

    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    forget_containers()
    try:
        with mock_aws():
            yield
    finally:
        forget_containers()


def create_stack_resources(
    session: Any,
    *,
    audit_table: str,
    idempotency_table: str,
    topic_name: str = "perimeter-findings",
    queue_name: str = "perimeter-findings-q",
    raw_delivery: bool = True,
    findings_table: str | None = None,
) -> tuple[str, str]:
    """Create the tables, enable Security Hub, subscribe a queue to the topic.
    Returns ``(topic_arn, queue_url)``; with ``raw_delivery`` the queue receives the message
    body itself, otherwise SNS's JSON envelope around it."""
    ddb = session.client("dynamodb")
    tables = [(audit_table, "pk"), (idempotency_table, "id")]
    if findings_table:
        tables.append((findings_table, "pk"))
    for table, key in tables:
        ddb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    session.client("securityhub").enable_security_hub()
    sns, sqs = session.client("sns"), session.client("sqs")
    topic = sns.create_topic(Name=topic_name)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    attributes = {"RawMessageDelivery": "true"} if raw_delivery else {}
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes=attributes)
    return topic, queue_url


def drain_messages(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message waiting on the queue, JSON-decoded, and deleted."""
    out = []
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not batch:
            return out
        for m in batch:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def audit_records(ddb: Any, table: str) -> list[dict[str, Any]]:
    """Every audit record's body."""
    from perimeter.adapters.audit import AuditAdapter

    return AuditAdapter(ddb, table).scan()
