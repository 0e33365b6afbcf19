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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


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
            names[f"#p{j}"], names[f"#q{j}"] = f"first:{c}", f"created:{c}"
            removes.append(f"#p{j}")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        # #q names are only read back, never written: DynamoDB refuses unused names.
        names = {k: v for k, v in names.items() if not k.startswith("#q")}
        resp = self._ddb.update_item(
            TableName=self._table,
            Key={"pk": {"S": resource}},
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={":now": {"S": now}},
            ReturnValues="ALL_OLD",
        )
        old = {k: v.get("S", "") for k, v in (resp.get("Attributes") or {}).items()}
        out: dict[str, Seen] = {}
        for c in failing:
            created = old.get(f"created:{c}")
            out[c] = Seen(created or now, old.get(f"first:{c}") or now, created is not None)
        for c in passing:
            created = old.get(f"created:{c}")
            out[c] = Seen(created or now, old.get(f"first:{c}") or created or now, created is not None)
        return out
