"""Review-state adapter (DynamoDB): when the sweep first saw each group unused (PER-REV-1).

One Scan per sweep reads every first sighting; BatchWriteItem (25 a call) records the new ones
and forgets groups that are used again. Keys are ``unused#<group id>``, so the table can hold
other review state later.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

PREFIX = "unused#"
MAX_BATCH = 25


class ReviewStateAdapter:
    def __init__(self, client: Any, table_name: str) -> None:
        self._ddb = client
        self._table = table_name

    def unused_since(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for page in self._ddb.get_paginator("scan").paginate(TableName=self._table, ConsistentRead=True):
            for item in page.get("Items", []):
                key = item["pk"]["S"]
                if key.startswith(PREFIX):
                    out[key[len(PREFIX) :]] = item["since"]["S"]
        return out

    def update(self, first_seen: Mapping[str, str], cleared: Iterable[str]) -> None:
        requests: list[dict[str, Any]] = [
            {"PutRequest": {"Item": {"pk": {"S": PREFIX + g}, "since": {"S": since}}}}
            for g, since in sorted(first_seen.items())
        ]
        requests += [{"DeleteRequest": {"Key": {"pk": {"S": PREFIX + g}}}} for g in sorted(set(cleared))]
        for start in range(0, len(requests), MAX_BATCH):
            self._write(requests[start : start + MAX_BATCH])

    def _write(self, batch: list[dict[str, Any]], attempts: int = 8) -> None:
        pending = {self._table: batch}
        for attempt in range(attempts):
            resp = self._ddb.batch_write_item(RequestItems=pending)
            pending = resp.get("UnprocessedItems") or {}
            if not pending:
                return
            time.sleep(min(1.0, 0.05 * 2**attempt))  # DynamoDB asks to back off on unprocessed items
        raise RuntimeError(f"review state: {len(pending.get(self._table, []))} write(s) left unprocessed")
