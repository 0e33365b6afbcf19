"""Audit trail adapter (DynamoDB): what Perimeter changed, exactly enough to undo it.

The record is written *before* the change (write-ahead): if the Lambda dies between revoke and
report, the retry finds the record and still reports what was removed, and ``perimeter
restore`` can always put back what a record lists. Its key is deterministic
(``<eventID>#<group>``), so a retried write overwrites rather than duplicates.

The first record an acting stage writes carries the stage's idempotency claim in the same
``TransactWriteItems`` (``perimeter.core.once``): one round trip between the read and the revoke, not
two; a duplicate delivery fails the transaction and so writes no record.

A DynamoDB item holds at most 400 KB, and a group can carry thousands of rules: a record that
outgrew one item would stop every revoke it guards. So a body larger than ``PART_BYTES`` is
stored compressed (zlib, a binary attribute), and one whose compressed form is still too large
is split into parts
(``<audit_id>#part-<n>``), written before the head item that names how many there are: a head
is only ever readable once all its parts are.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from perimeter.core import once

#: Bytes of compressed body per item: well under DynamoDB's 400 KB item limit, which also
#: counts attribute names and the other attributes.
PART_BYTES = 300_000
PART_SEPARATOR = "#part-"


class AuditAdapter:
    def __init__(self, client: Any, table_name: str) -> None:
        self._ddb = client
        self._table = table_name

    def put(self, record: Mapping[str, Any]) -> None:
        parts, head = self._items(record)
        for item in parts:  # parts first: a head is readable only once they are
            self._ddb.put_item(TableName=self._table, Item=item)
        claim = once.current()
        if claim is not None and not claim.claimed:
            claim.take({"TableName": self._table, "Item": head})
        else:
            self._ddb.put_item(TableName=self._table, Item=head)

    def put_many(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Write-ahead for many changes at once (the sweep): BatchWriteItem, 25 a call,
        unprocessed items retried with backoff until written. A record too large for one item
        writes its parts first, one by one, then its head goes with the batch."""
        heads = []
        for record in records:
            parts, head = self._items(record)
            for item in parts:
                self._ddb.put_item(TableName=self._table, Item=item)
            heads.append(head)
        for start in range(0, len(heads), 25):
            pending = {self._table: [{"PutRequest": {"Item": h}} for h in heads[start : start + 25]]}
            for attempt in range(8):
                pending = self._ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(min(1.0, 0.05 * 2**attempt))
            if pending:
                raise RuntimeError("audit: records left unprocessed; nothing was changed")

    @staticmethod
    def _items(record: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """(part items, head item) for one record."""
        audit_id = str(record["audit_id"])
        text = json.dumps(record, sort_keys=True, default=str)
        head: dict[str, Any] = {
            "pk": {"S": audit_id},
            "time": {"S": str(record["time"])},
            "group_id": {"S": str(record.get("group_id", ""))},
        }
        if len(text.encode()) <= PART_BYTES:
            # The common case stays readable as plain JSON (``body``) by any DynamoDB reader.
            return [], {**head, "body": {"S": text}}
        packed = zlib.compress(text.encode(), 9)
        chunks = [packed[i : i + PART_BYTES] for i in range(0, len(packed), PART_BYTES)]
        parts = [
            {"pk": {"S": f"{audit_id}{PART_SEPARATOR}{n}"}, "body_z": {"B": chunk}}
            for n, chunk in enumerate(chunks[1:], start=1)
        ]
        return parts, {**head, "body_z": {"B": chunks[0]}, "parts": {"N": str(len(chunks))}}

    def get(self, audit_id: str) -> dict[str, Any] | None:
        item = self._item(audit_id)
        return self._body(item) if item else None

    def restored(self, audit_id: str) -> dict[str, str] | None:
        """Who undid this record and when (None: never undone, or no such record)."""
        item = self._item(audit_id)
        if not item or "restored_at" not in item:
            return None
        return {k: str(item[k]["S"]) for k in ("restored_at", "restored_by", "exempt_until") if k in item}

    def mark_restored(self, audit_id: str, *, by: str, at: str, exempt_until: str) -> bool:
        """Record the undo on the record, once: False when it was already undone (a concurrent
        or repeated undo), so the caller reports a no-op."""
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key={"pk": {"S": audit_id}},
                UpdateExpression="SET restored_at = :at, restored_by = :by, exempt_until = :until",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(restored_at)",
                ExpressionAttributeValues={
                    ":at": {"S": at},
                    ":by": {"S": by},
                    ":until": {"S": exempt_until},
                },
            )
        except self._ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def scan(self, limit: int = 1000) -> list[dict[str, Any]]:
        """All records (for the restore and list commands; not on the event path)."""
        out: list[dict[str, Any]] = []
        paginator = self._ddb.get_paginator("scan")
        for page in paginator.paginate(TableName=self._table, PaginationConfig={"MaxItems": limit}):
            out.extend(self._body(i) for i in page.get("Items", []) if PART_SEPARATOR not in i["pk"]["S"])
        return sorted(out, key=lambda r: r.get("time", ""))

    def _item(self, key: str) -> dict[str, Any] | None:
        resp = self._ddb.get_item(TableName=self._table, Key={"pk": {"S": key}}, ConsistentRead=True)
        item: dict[str, Any] | None = resp.get("Item")
        return item

    def _body(self, item: Mapping[str, Any]) -> dict[str, Any]:
        if "body" in item:
            plain: dict[str, Any] = json.loads(item["body"]["S"])
            return plain
        audit_id = item["pk"]["S"]
        packed = bytes(item["body_z"]["B"])
        for n in range(1, int(item.get("parts", {}).get("N", "1"))):
            part = self._item(f"{audit_id}{PART_SEPARATOR}{n}")
            if part is None:
                raise LookupError(f"audit record {audit_id}: part {n} is missing")
            packed += bytes(part["body_z"]["B"])
        body: dict[str, Any] = json.loads(zlib.decompress(packed))
        return body
