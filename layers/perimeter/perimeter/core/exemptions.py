"""Exemptions besides the policy file: the ``perimeter:exempt`` tag and the undo's records (pure).

Three sources protect a resource from remediation, and all three are applied in one place,
``Policy.exemption_for`` (so the event path, the default-SG path, the posture controls and the
sweep judge them alike):

1. the policy file's ``exemptions`` (reviewed in code review; ``perimeter.policy``);
2. the tag ``perimeter:exempt`` on the resource itself, parsed here (``parse_tag``);
3. the exemptions the undo writes (DynamoDB, one item per resource, control and, for a
   security-group rule, the rule's content; ``from_item`` / ``undo_items``).

Every exemption ends: an expired one protects nothing. A tag that does not parse protects
nothing either, and is reported as PER-EXM-1 (``tag_problem``).

The tag's value format uses only the characters every AWS service accepts in a tag value
(letters, digits, spaces and ``+ - = . _ : /  @``; EC2 itself allows more, but AWS Config,
Resource Groups and Organizations tag policies do not), at most 256 characters::

    PER-SG-1+PER-SG-2 until=2026-12-31 reason=partner SFTP ticket SEC-123
    all until=2026-07-01 reason=load test until Friday

controls (``+``-joined control ids, or ``all``), then ``until=YYYY-MM-DD`` (the last day the
exemption holds, UTC; at most ``TAG_MAX_DAYS`` ahead), then ``reason=`` and the rest of the value.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from perimeter.policy import CONTROL_IDS, Exemption

TAG_KEY = "perimeter:exempt"
#: A tag may not exempt for longer than this (a forgotten tag must end too).
TAG_MAX_DAYS = 366
#: Characters every AWS service accepts in a tag value.
_ALLOWED = re.compile(r"[A-Za-z0-9 +\-=._:/@]*")
_FORMAT = re.compile(r"(?P<controls>\S+) until=(?P<until>\S+) reason=(?P<reason>.*\S.*)")
#: How far ahead an expiring exemption is reported (the sweep).
EXPIRING_DAYS = 7


@dataclass(frozen=True, slots=True)
class TagProblem:
    """A ``perimeter:exempt`` tag that does not parse: it protects nothing."""

    resource_id: str
    value: str
    problem: str


def rule_key_text(key: Sequence[Any]) -> str:
    """A rule's content key as text (the sort key of its exemption item)."""
    return "|".join("" if k is None else str(k) for k in key)


@lru_cache(maxsize=4096)
def parse_tag(value: str, today: dt.date) -> Exemption | str:
    """The tag's exemption, or the reason it is malformed (a string)."""
    if len(value) > 256:
        return "longer than 256 characters"
    if not _ALLOWED.fullmatch(value):
        bad = sorted({c for c in value if not _ALLOWED.fullmatch(c)})
        return f"characters tag values may not hold everywhere: {''.join(bad)!r}"
    m = _FORMAT.fullmatch(value.strip())
    if not m:
        return "expected '<controls> until=YYYY-MM-DD reason=<text>', controls '+'-joined or 'all'"
    controls: frozenset[str] | None = None
    if m["controls"] != "all":
        ids = m["controls"].split("+")
        unknown = [c for c in ids if c not in CONTROL_IDS or c == "PER-EXM-1"]
        if unknown:
            return f"unknown control(s) {', '.join(unknown)}"
        controls = frozenset(ids)
    try:
        until = dt.date.fromisoformat(m["until"])
    except ValueError:
        return f"until={m['until']} is not a date YYYY-MM-DD"
    if (until - today).days > TAG_MAX_DAYS:
        return f"until={until.isoformat()} is more than {TAG_MAX_DAYS} days ahead"
    return Exemption(
        reason=m["reason"].strip(), expires=until, controls=controls, source="tag", what=f"tag {TAG_KEY}"
    )


def from_tags(tags: Mapping[str, str] | None, today: dt.date) -> Exemption | None:
    """The exemption the resource's tag grants (None when absent or malformed)."""
    if not tags or TAG_KEY not in tags:
        return None
    parsed = parse_tag(str(tags[TAG_KEY]), today)
    return parsed if isinstance(parsed, Exemption) else None


def tag_problem(resource_id: str, tags: Mapping[str, str] | None, today: dt.date) -> TagProblem | None:
    if not tags or TAG_KEY not in tags:
        return None
    value = str(tags[TAG_KEY])
    parsed = parse_tag(value, today)
    return TagProblem(resource_id, value, parsed) if isinstance(parsed, str) else None


# --- the undo's exemptions (DynamoDB items) ------------------------------------------------


def expiry_epoch(until: dt.date) -> int:
    """The TTL attribute: the end of the last day (DynamoDB deletes the item some time after;
    ``Exemption.applies`` stops honouring it at once)."""
    end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return int(end.timestamp())


def undo_items(
    *,
    resource_id: str,
    controls: Iterable[str],
    rules: Sequence[Any] = (),
    until: dt.date,
    actor: str,
    reason: str,
    audit_id: str,
    finding_id: str | None,
    now: str,
) -> list[dict[str, Any]]:
    """The DynamoDB items (low-level attribute values) for one undo: per control, one item per
    restored rule (exempting that rule's content only) or one for the whole resource."""
    import json

    items = []
    for control in sorted(set(controls)):
        for rule in rules or [None]:
            sk = f"{control}#{rule_key_text(rule.key) if rule is not None else '*'}"
            item: dict[str, Any] = {
                "pk": {"S": resource_id},
                "sk": {"S": sk},
                "control": {"S": control},
                "until": {"S": until.isoformat()},
                "expires_at": {"N": str(expiry_epoch(until))},
                "actor": {"S": actor},
                "reason": {"S": reason},
                "audit_id": {"S": audit_id},
                "created": {"S": now},
            }
            if finding_id:
                item["finding_id"] = {"S": finding_id}
            if rule is not None:
                item["rule"] = {"S": json.dumps(rule.to_dict(), sort_keys=True)}
                item["rule_text"] = {"S": rule.describe()}
            items.append(item)
    return items


def undo_keys(resource_id: str, control_id: str, rule_key: Sequence[Any]) -> tuple[tuple[str, str], ...]:
    """The keys ``(pk, sk)`` of the undo's items that could exempt this rule from this control:
    the rule's own (its content) and the resource's whole-control one (``undo_items``)."""
    return (
        (resource_id, f"{control_id}#{rule_key_text(rule_key)}"),
        (resource_id, f"{control_id}#*"),
    )


def from_item(item: Mapping[str, Any]) -> Exemption:
    """An exemption item as the evaluation applies it."""
    import json

    from perimeter.core.rules import Rule

    def s(name: str) -> str | None:
        v = item.get(name)
        return str(v["S"]) if v and "S" in v else None

    resource = s("pk") or ""
    rule_key = None
    what = resource
    if s("rule"):
        rule = Rule.from_dict(json.loads(s("rule") or "{}"))
        rule_key = rule.key
        what = f"{resource} {rule.describe()}"
    return Exemption(
        reason=f"undone by {s('actor')}" + (f": {s('reason')}" if s("reason") else ""),
        expires=dt.date.fromisoformat(s("until") or "1970-01-01"),
        controls=frozenset({s("control") or ""}),
        resource=resource,
        rule=rule_key,
        source="undo",
        what=what,
    )


def expiring(exemptions: Iterable[Exemption], today: dt.date, days: int = EXPIRING_DAYS) -> list[Exemption]:
    """Those still in force that end within ``days`` (the sweep reports them)."""
    horizon = today + dt.timedelta(days=days)
    return sorted((e for e in exemptions if today <= e.expires <= horizon), key=lambda e: e.expires)
