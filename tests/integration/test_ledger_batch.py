"""The sweep's way through the findings ledger (Scan, ``observed``, a conditional
TransactWriteItems) leaves the same items and returns the same first times as the event path's
``observe`` (UpdateItem), on moto's DynamoDB, for the same sequence of observations; and an
event's write landing between the sweep's Scan and its write is never overwritten."""

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
        writes.append(by_sweep.write_many(changed, snapshot))
        assert _items(ddb, "by-sweep") == _items(ddb, "by-event")
    # 30 changed items are one TransactWriteItems (100 a request); the fourth step changes
    # nothing (PER-SG-2 was failing since the second, PER-SG-1's failure ended in the third).
    assert writes == [1, 1, 1, 0, 1]


def test_an_item_an_event_changed_after_the_sweeps_scan_keeps_the_events_first_times(ddb: Any) -> None:
    ledger = FindingLedger(ddb, "by-sweep")
    arn, other, new = (f"arn:aws:ec2:us-east-1:123456789012:security-group/sg-{i}" for i in "abc")
    ledger.observe(arn, ["PER-SG-1"], [], "t0")
    ledger.observe(other, ["PER-SG-1"], [], "t0")
    snapshot = ledger.snapshot()
    # The sweep's view: on arn PER-SG-1 passes and PER-SG-2 fails; other and new fail PER-SG-2.
    changed = {
        pk: observed(snapshot.get(pk), ["PER-SG-2"], ["PER-SG-1"] if pk == arn else [], "t2")[0]
        for pk in (arn, other, new)
    }
    # An event on arn lands between the sweep's Scan and its write: PER-SG-3 first seen at t1,
    # PER-SG-1 still failing.
    ledger.observe(arn, ["PER-SG-1", "PER-SG-3"], [], "t1")
    calls = ledger.write_many({k: v for k, v in changed.items() if v is not None}, snapshot)
    items = _items(ddb, "by-sweep")
    assert items[arn] == {
        "created:PER-SG-1": "t0",
        "first:PER-SG-1": "t0",  # not removed on the sweep's older view
        "created:PER-SG-3": "t1",  # the event's write stands
        "first:PER-SG-3": "t1",
        "created:PER-SG-2": "t2",  # what the sweep saw first is added
        "first:PER-SG-2": "t2",
    }
    # The other items are written as the sweep computed them.
    assert items[other] == {**_items_of(snapshot[other]), "created:PER-SG-2": "t2", "first:PER-SG-2": "t2"}
    assert items[new] == {"created:PER-SG-2": "t2", "first:PER-SG-2": "t2"}
    # The refused transaction, the same without arn, and arn's own UpdateItem.
    assert calls == 3


def test_an_item_another_writer_created_after_the_scan_is_not_replaced(ddb: Any) -> None:
    ledger = FindingLedger(ddb, "by-sweep")
    arn = "arn:aws:ec2:us-east-1:123456789012:security-group/sg-d"
    snapshot = ledger.snapshot()  # empty
    item, _ = observed(snapshot.get(arn), ["PER-SG-1"], [], "t2")
    ledger.observe(arn, ["PER-SG-1"], [], "t1")  # an event, after the Scan
    assert item is not None
    ledger.write_many({arn: item}, snapshot)
    assert _items(ddb, "by-sweep")[arn] == {"created:PER-SG-1": "t1", "first:PER-SG-1": "t1"}


def _items_of(item: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in item.items() if k != "updated_at"}


def test_an_unchanged_observation_writes_nothing() -> None:
    item = {"created:PER-SG-1": "t0", "first:PER-SG-1": "t0", "updated_at": "t0"}
    new, seen = observed(item, ["PER-SG-1"], ["PER-SG-2"], "t1")
    assert new is None
    assert seen["PER-SG-1"].created_at == "t0" and seen["PER-SG-1"].existed
    assert not seen["PER-SG-2"].existed
