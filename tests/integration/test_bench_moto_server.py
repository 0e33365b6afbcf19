"""The benchmarks' moto server (``bench/fair.py``) keeps no copy of the tables each DynamoDB
``TransactWriteItems`` takes to roll back with.

moto records every model object it builds in a per-class list read only by its dashboard, the
rollback copies included, so a long benchmark's server grew by a copy of Perimeter's tables per
event. ``fair.UNTRACKED_MODELS`` is the code the server runs before it starts; run here in-process
(and undone afterwards), the tracked list must stay flat while transactions still work and still
roll back.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.core.common_models import BaseModel
from moto.dynamodb.models.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import fair


def _transactions(n: int) -> None:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    ddb.create_table(
        TableName="audit",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for i in range(n):
        ddb.transact_write_items(
            TransactItems=[{"Put": {"TableName": "audit", "Item": {"pk": {"S": str(i)}}}}]
        )
    # A refused transaction still rolls back: nothing of it is written.
    with pytest.raises(ddb.exceptions.TransactionCanceledException):
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "audit", "Item": {"pk": {"S": "new"}}}},
                {
                    "Put": {
                        "TableName": "audit",
                        "Item": {"pk": {"S": "0"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    assert ddb.scan(TableName="audit")["Count"] == n


@pytest.fixture
def tracked_tables() -> Iterator[list[object]]:
    original = BaseModel.__dict__["__new__"]
    Table.instances_tracked = []  # type: ignore[attr-defined]
    yield Table.instances_tracked  # type: ignore[attr-defined]
    BaseModel.__new__ = original  # type: ignore[method-assign]


def test_moto_as_shipped_keeps_a_table_copy_per_transaction(tracked_tables: list[object]) -> None:
    with mock_aws():
        _transactions(20)
    assert len(tracked_tables) > 20  # what the benchmark server must not do


def test_the_bench_server_keeps_none(tracked_tables: list[object]) -> None:
    exec(fair.UNTRACKED_MODELS, {})  # the exact code the server runs
    with mock_aws():
        _transactions(20)
    assert tracked_tables == []
