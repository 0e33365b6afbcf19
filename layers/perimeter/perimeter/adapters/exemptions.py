"""The undo's exemptions (DynamoDB): one item per (resource, control[, rule content]).

Key: ``pk`` = the resource id (a security group or VPC), ``sk`` = ``<control>#<rule key>`` or
``<control>#*``; ``expires_at`` is the table's TTL attribute (DynamoDB deletes an item some
time after it passes; ``Exemption.applies`` stops honouring it on the day after ``until``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from perimeter.core.exemptions import from_item
from perimeter.policy import Exemption


class ExemptionStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._ddb = client
        self._table = table_name
        #: the whole table by resource, once the sweep has scanned it (its later lookups, e.g.
        #: the default-SG path's, are served from here, not one Query per VPC)
        self._scanned: dict[str, tuple[Exemption, ...]] | None = None

    def for_resource(self, resource_id: str) -> tuple[Exemption, ...]:
        """Every exemption item of one resource (one Query; expired items are returned too and
        ignored by the evaluation until the TTL removes them)."""
        if self._scanned is not None:
            return self._scanned.get(resource_id, ())
        out: list[Exemption] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :r",
            "ExpressionAttributeValues": {":r": {"S": resource_id}},
        }
        while True:
            resp = self._ddb.query(**kwargs)
            out.extend(from_item(i) for i in resp.get("Items", []))
            if not resp.get("LastEvaluatedKey"):
                return tuple(out)
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def for_resources(self, resource_ids: Iterable[str]) -> dict[str, tuple[Exemption, ...]]:
        return {rid: self.for_resource(rid) for rid in dict.fromkeys(resource_ids)}

    def absent(self, keys: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
        """``ConditionCheck`` items (for a ``TransactWriteItems``) that hold while no exemption
        item has one of these keys ``(resource id, sort key)``, expired or not: the event path
        checks in its claim that none exists rather than reading them first."""
        return [
            {
                "TableName": self._table,
                "Key": {"pk": {"S": pk}, "sk": {"S": sk}},
                "ConditionExpression": "attribute_not_exists(pk)",
            }
            for pk, sk in dict.fromkeys(keys)
        ]

    def put(self, items: Sequence[Mapping[str, Any]]) -> None:
        """Write (or renew) exemption items: the same key again is the same exemption."""
        for item in items:
            self._ddb.put_item(TableName=self._table, Item=dict(item))

    def scan(self) -> list[Exemption]:
        """Every exemption (the sweep: one read for the whole region, and its report of those
        expiring soon); later ``for_resource`` lookups of this store are served from it."""
        out: list[Exemption] = []
        for page in self._ddb.get_paginator("scan").paginate(TableName=self._table):
            out.extend(from_item(i) for i in page.get("Items", []))
        by: dict[str, list[Exemption]] = {}
        for ex in out:
            by.setdefault(str(ex.resource), []).append(ex)
        self._scanned = {k: tuple(v) for k, v in by.items()}
        return out


def in_force(exemptions: Iterable[Exemption], today: dt.date | None = None) -> list[Exemption]:
    day = today or dt.datetime.now(dt.UTC).date()
    return [e for e in exemptions if day <= e.expires]
