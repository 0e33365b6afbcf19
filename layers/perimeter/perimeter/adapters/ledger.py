"""Findings ledger (DynamoDB): when each (control, resource) finding was created and since when
its current failure has been observed, so updates keep ``CreatedAt``/``FirstObservedAt``.

Security Hub takes these two fields from whatever the provider sends on every import, so
Perimeter must send the first values again. Reading them back from Security Hub would cost a
read per event; instead one ``UpdateItem`` per resource both records this observation and
returns what was there before (``ReturnValues=ALL_OLD``): ``if_not_exists`` keeps the first
times, a passing control drops its "failing since" time. The old item also tells which
controls ever had a finding, so a passing control is reported PASSED only where a finding
exists to resolve (no archived noise for groups that never failed).

One item per resource (``pk`` = the resource's ARN); attributes ``created:<control>`` and
``first:<control>``.

The sweep observes every group at once: one Scan reads the whole ledger beside the region's
listings, ``observed`` applies the same rules as ``observe`` to each item (pure), and only the
items that changed are written back, 100 a TransactWriteItems, each put on the condition that
the item is as the Scan read it (its ``updated_at``, or absent). An item an event changed in
between (its UpdateItem landed after the Scan) is not overwritten: the transaction is refused,
the others are written again without it, and it gets only the first times the sweep added,
each ``if_not_exists`` (one UpdateItem): a first-seen time the event wrote stays, and so does
one the sweep's older view would have removed (the next observation settles it).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: items a TransactWriteItems takes
MAX_TRANSACTION = 100
#: attempts of one transaction (refused items dropped, conflicts and throttling retried)
ATTEMPTS = 8
#: a whole transaction refused for these is sent again as it was
RETRIED = frozenset(
    {"TransactionConflictException", "ThrottlingException", "ProvisionedThroughputExceededException"}
)


@dataclass(frozen=True, slots=True)
class Seen:
    """A finding's first times, as its next import must carry them."""

    created_at: str
    first_observed_at: str
    #: a finding with this id existed before this observation
    existed: bool


class FindingLedger:
    def __init__(self, client: Any, table_name: str) -> None:
        self._ddb = client
        self._table = table_name

    def observe(
        self, resource: str, failing: Iterable[str], passing: Iterable[str], now: str
    ) -> Mapping[str, Seen]:
        """Record that ``failing`` controls fail and ``passing`` pass on ``resource`` at
        ``now``; return each control's ``Seen``."""
        failing, passing = list(dict.fromkeys(failing)), list(dict.fromkeys(passing))
        return self.seen_from(self.record(resource, failing, passing, now), failing, passing, now)

    def record(
        self, resource: str, failing: Iterable[str], passing: Iterable[str], now: str
    ) -> dict[str, str]:
        """The write of ``observe``: one UpdateItem; returns the item as it was before (its
        ``created:``/``first:`` attributes), from which ``seen_from`` tells the first times and
        ``restore`` undoes the write."""
        failing, passing = list(dict.fromkeys(failing)), list(dict.fromkeys(passing))
        if not failing and not passing:
            return {}
        names: dict[str, str] = {}
        sets = ["#u = :now"]
        names["#u"] = "updated_at"
        removes = []
        for i, c in enumerate(failing):
            names[f"#c{i}"], names[f"#f{i}"] = f"created:{c}", f"first:{c}"
            sets.append(f"#c{i} = if_not_exists(#c{i}, :now)")
            sets.append(f"#f{i} = if_not_exists(#f{i}, :now)")
        for j, c in enumerate(passing):
            names[f"#p{j}"] = f"first:{c}"
            removes.append(f"#p{j}")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        resp = self._ddb.update_item(
            TableName=self._table,
            Key={"pk": {"S": resource}},
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={":now": {"S": now}},
            ReturnValues="ALL_OLD",
        )
        return {k: v.get("S", "") for k, v in (resp.get("Attributes") or {}).items()}

    @staticmethod
    def seen_from(
        old: Mapping[str, str], failing: Iterable[str], passing: Iterable[str], now: str
    ) -> dict[str, Seen]:
        """Each control's ``Seen`` given the item as it was before this observation (pure)."""
        out: dict[str, Seen] = {}
        for c in failing:
            created = old.get(f"created:{c}")
            out[c] = Seen(created or now, old.get(f"first:{c}") or now, created is not None)
        for c in passing:
            created = old.get(f"created:{c}")
            out[c] = Seen(created or now, old.get(f"first:{c}") or created or now, created is not None)
        return out

    def restore(
        self, resource: str, old: Mapping[str, str], failing: Iterable[str], passing: Iterable[str]
    ) -> None:
        """Undo ``record``: put back every attribute it touched as ``old`` had it. Used when the
        change the observation anticipated (a revoke run beside it) failed, so the retry finds
        the first times as they were."""
        touched = ["updated_at"]
        for c in failing:
            touched += [f"created:{c}", f"first:{c}"]
        touched += [f"first:{c}" for c in passing]
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets, removes = [], []
        for i, attr in enumerate(dict.fromkeys(touched)):
            names[f"#a{i}"] = attr
            if attr in old:
                values[f":v{i}"] = {"S": old[attr]}
                sets.append(f"#a{i} = :v{i}")
            else:
                removes.append(f"#a{i}")
        expression = " ".join(
            part
            for part in (
                "SET " + ", ".join(sets) if sets else "",
                "REMOVE " + ", ".join(removes) if removes else "",
            )
            if part
        )
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"pk": {"S": resource}},
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
        }
        if values:
            kwargs["ExpressionAttributeValues"] = values
        self._ddb.update_item(**kwargs)

    def snapshot(self) -> dict[str, dict[str, str]]:
        """Every item of the ledger, by resource (one paginated Scan)."""
        out: dict[str, dict[str, str]] = {}
        for page in self._ddb.get_paginator("scan").paginate(TableName=self._table, ConsistentRead=True):
            for item in page.get("Items", []):
                out[item["pk"]["S"]] = {k: v["S"] for k, v in item.items() if k != "pk" and "S" in v}
        return out

    def write_many(
        self, items: Mapping[str, Mapping[str, str]], scanned: Mapping[str, Mapping[str, str]]
    ) -> int:
        """Put these items whole (resource -> attributes), 100 a TransactWriteItems, each on the
        condition that it is still as ``scanned`` (the Scan's items) holds it; an item changed
        since gets only the attributes the sweep added, ``if_not_exists`` (``_merge``).
        Returns the number of requests made."""
        from botocore.exceptions import ClientError

        keys = sorted(items)
        calls = 0
        for start in range(0, len(keys), MAX_TRANSACTION):
            batch = keys[start : start + MAX_TRANSACTION]
            for attempt in range(ATTEMPTS):
                calls += 1
                try:
                    self._ddb.transact_write_items(
                        TransactItems=[{"Put": self._put(pk, items[pk], scanned.get(pk))} for pk in batch]
                    )
                    break
                except ClientError as exc:
                    refused, again = _cancelled(exc, batch)
                for pk in refused:
                    calls += self._merge(pk, items[pk], scanned.get(pk) or {})
                batch = again
                if not batch:
                    break
                if not refused:
                    time.sleep(min(1.0, 0.05 * 2**attempt))  # a conflict or throttling: back off
            else:
                raise RuntimeError(f"findings ledger: {len(batch)} write(s) left unwritten")
        return calls

    def _put(self, pk: str, attrs: Mapping[str, str], old: Mapping[str, str] | None) -> dict[str, Any]:
        put: dict[str, Any] = {
            "TableName": self._table,
            "Item": {"pk": {"S": pk}, **{k: {"S": v} for k, v in attrs.items()}},
        }
        if old is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        elif "updated_at" in old:
            put["ConditionExpression"] = "#u = :scanned"
            put["ExpressionAttributeNames"] = {"#u": "updated_at"}
            put["ExpressionAttributeValues"] = {":scanned": {"S": old["updated_at"]}}
        else:
            put["ConditionExpression"] = "attribute_exists(pk) AND attribute_not_exists(#u)"
            put["ExpressionAttributeNames"] = {"#u": "updated_at"}
        return put

    def _merge(self, pk: str, attrs: Mapping[str, str], old: Mapping[str, str]) -> int:
        """An item changed since the Scan: add the first times the sweep added to what the Scan
        read, each only where the item has none; remove nothing. Returns the requests made."""
        added = {k: v for k, v in attrs.items() if k != "updated_at" and k not in old}
        if not added:
            return 0
        names = {f"#a{i}": k for i, k in enumerate(added)}
        values = {f":v{i}": {"S": v} for i, v in enumerate(added.values())}
        sets = [f"#a{i} = if_not_exists(#a{i}, :v{i})" for i in range(len(added))]
        self._ddb.update_item(
            TableName=self._table,
            Key={"pk": {"S": pk}},
            UpdateExpression="SET " + ", ".join(sets),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        return 1


def _cancelled(exc: Exception, batch: list[str]) -> tuple[list[str], list[str]]:
    """A refused transaction: (items whose condition failed, items to write again). Raises
    what is not a cancellation by condition, conflict or throttling."""
    response = getattr(exc, "response", {})
    code = response.get("Error", {}).get("Code", "")
    if code in RETRIED:
        return [], list(batch)
    reasons = response.get("CancellationReasons") or []
    if code != "TransactionCanceledException" or len(reasons) != len(batch):
        raise exc
    refused, again = [], []
    for pk, reason in zip(batch, reasons, strict=True):
        why = reason.get("Code") or "None"
        if why == "ConditionalCheckFailed":
            refused.append(pk)
        elif why in ("None", "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"):
            again.append(pk)
        else:
            raise exc
    return refused, again


def observed(
    old: Mapping[str, str] | None, failing: Iterable[str], passing: Iterable[str], now: str
) -> tuple[dict[str, str] | None, dict[str, Seen]]:
    """``FindingLedger.observe`` on an item already read: (the item to write, or None when
    only its ``updated_at`` would change; each control's ``Seen``)."""
    old = dict(old or {})
    failing, passing = list(dict.fromkeys(failing)), list(dict.fromkeys(passing))
    new = dict(old)
    seen: dict[str, Seen] = {}
    for c in failing:
        created = old.get(f"created:{c}")
        new.setdefault(f"created:{c}", now)
        new.setdefault(f"first:{c}", now)
        seen[c] = Seen(created or now, old.get(f"first:{c}") or now, created is not None)
    for c in passing:
        created = old.get(f"created:{c}")
        new.pop(f"first:{c}", None)
        seen[c] = Seen(created or now, old.get(f"first:{c}") or created or now, created is not None)
    changed = {k: v for k, v in new.items() if k != "updated_at"} != {
        k: v for k, v in old.items() if k != "updated_at"
    }
    if not changed:
        return None, seen
    new["updated_at"] = now
    return new, seen
