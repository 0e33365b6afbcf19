"""The sweep's way through the findings ledger (Scan, ``observed``, BatchWriteItem) leaves the
same items and returns the same first times as the event path's ``observe`` (UpdateItem), on
moto's DynamoDB, for the same sequence of observations."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws
from perimeter.adapters.ledger import FindingLedger, observed

STEPS = [
    # (failing, passing, now)
    (["PER-SG-1"], ["PER-SG-2"], "2026-06-01T10:00:00.000Z"),
    (["PER-SG-1", "PER-SG-2"], [], "2026-06-01T11:00:00.000Z"),
    ([], ["PER-SG-1"], "2026-06-01T12:00:00.000Z"),
    (["PER-SG-2"], ["PER-SG-1"], "2026-06-01T13:00:00.000Z"),
    (["PER-SG-1"], ["PER-SG-2"], "2026-06-01T14:00:00.000Z"),
]


@pytest.fixture
def ddb(monkeypatch: Any) -> Any:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        for name in ("by-event", "by-sweep"):
            client.create_table(
                TableName=name,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        yield client


def _items(client: Any, table: str) -> dict[str, dict[str, str]]:
    return {
        i["pk"]["S"]: {k: v["S"] for k, v in i.items() if k not in ("pk", "updated_at")}
        for i in client.scan(TableName=table)["Items"]
    }


def test_the_sweeps_batch_path_keeps_the_same_ledger_as_the_event_path(ddb: Any) -> None:
    by_event, by_sweep = FindingLedger(ddb, "by-event"), FindingLedger(ddb, "by-sweep")
    arns = [f"arn:aws:ec2:us-east-1:123456789012:security-group/sg-{i}" for i in range(30)]
    writes = []
    for failing, passing, now in STEPS:
        snapshot = by_sweep.snapshot()
        changed = {}
        for arn in arns:
            want = by_event.observe(arn, failing, passing, now)
            item, got = observed(snapshot.get(arn), failing, passing, now)
            assert got == want
            if item is not None:
                changed[arn] = item
        writes.append(by_sweep.write_many(changed))
        assert _items(ddb, "by-sweep") == _items(ddb, "by-event")
    # 30 changed items are two BatchWriteItems (25 a request); the fourth step changes nothing
    # (PER-SG-2 was failing since the second, PER-SG-1's failure ended in the third): no write.
    assert writes == [2, 2, 2, 0, 2]


def test_an_unchanged_observation_writes_nothing() -> None:
    item = {"created:PER-SG-1": "t0", "first:PER-SG-1": "t0", "updated_at": "t0"}
    new, seen = observed(item, ["PER-SG-1"], ["PER-SG-2"], "t1")
    assert new is None
    assert seen["PER-SG-1"].created_at == "t0" and seen["PER-SG-1"].existed
    assert not seen["PER-SG-2"].existed
