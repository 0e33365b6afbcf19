"""Audit trail adapter (DynamoDB): what Perimeter changed, exactly enough to undo it.

The record is written *before* the change (write-ahead): if the Lambda dies between revoke and
report, the retry finds the record and still reports what was removed, and ``perimeter
restore`` can always put back what a record lists. Its key is deterministic
(``<eventID>#<group>``), so a retried write overwrites rather than duplicates.

The first record an acting stage writes carries the stage's idempotency claim in the same
``TransactWriteItems`` (``perimeter.once``): one round trip between the read and the revoke, not
two; a duplicate delivery fails the transaction and so writes no record.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from perimeter import once


class AuditAdapter:
    def __init__(self, client: Any, table_name: str) -> None:
        self._ddb = client
        self._table = table_name

    def put(self, record: Mapping[str, Any]) -> None:
        item = self._item(record)
        claim = once.current()
        if claim is not None and not claim.claimed:
            claim.take({"TableName": self._table, "Item": item})
        else:
            self._ddb.put_item(TableName=self._table, Item=item)

    def put_many(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Write-ahead for many changes at once (the sweep): BatchWriteItem, 25 a call,
        unprocessed items retried with backoff until written."""
        for start in range(0, len(records), 25):
            pending = {
                self._table: [{"PutRequest": {"Item": self._item(r)}} for r in records[start : start + 25]]
            }
            for attempt in range(8):
                pending = self._ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(min(1.0, 0.05 * 2**attempt))
            if pending:
                raise RuntimeError("audit: records left unprocessed; nothing was changed")

    @staticmethod
    def _item(record: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "pk": {"S": str(record["audit_id"])},
            "time": {"S": str(record["time"])},
            "group_id": {"S": str(record.get("group_id", ""))},
            "body": {"S": json.dumps(record, sort_keys=True, default=str)},
        }

    def get(self, audit_id: str) -> dict[str, Any] | None:
        resp = self._ddb.get_item(TableName=self._table, Key={"pk": {"S": audit_id}}, ConsistentRead=True)
        item = resp.get("Item")
        if not item:
            return None
        body: dict[str, Any] = json.loads(item["body"]["S"])
        return body

    def scan(self, limit: int = 1000) -> list[dict[str, Any]]:
        """All records (for the restore and list commands; not on the event path)."""
        out: list[dict[str, Any]] = []
        paginator = self._ddb.get_paginator("scan")
        for page in paginator.paginate(TableName=self._table, PaginationConfig={"MaxItems": limit}):
            out.extend(json.loads(i["body"]["S"]) for i in page.get("Items", []))
        return sorted(out, key=lambda r: r.get("time", ""))
