"""Route replayed CloudTrail records to the template's functions, as EventBridge would.

Most of a trail's records are reads and calls no rule wants, so routing first looks the
record's ``(eventSource, eventName)`` up in an index built from the patterns' own value lists
(one dict lookup rejects a non-routed record), and only the candidates go through the full
matcher (``patterns.compile_matcher``), wrapped in the EventBridge envelope exactly as
``perimeter.core.events.wrap_in_envelope`` wraps a live record. A pattern that does not list plain
event sources and names is matched against every record: the index only ever narrows by what
the pattern itself says.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perimeter.core.events import is_envelope, wrap_in_envelope

from perimeter_local.patterns import compile_matcher
from perimeter_local.template import load_template

Matcher = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class Route:
    function: str  # logical id in template.yaml
    rule: str  # the event's logical id under the function's Events
    pattern: Mapping[str, Any]
    match: Matcher


def template_routes(template_path: Path) -> list[Route]:
    """Every EventBridge rule on CloudTrail calls of every function in the template, compiled
    (a trail replays CloudTrail records: the Security Hub custom action's rule has none)."""
    template = load_template(template_path)
    out = []
    for logical_id, res in template["Resources"].items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        for event_id, ev in (res.get("Properties", {}).get("Events") or {}).items():
            if ev.get("Type") not in ("EventBridgeRule", "CloudWatchEvent"):
                continue
            pattern = ev["Properties"]["Pattern"]
            if "AWS API Call via CloudTrail" not in (pattern.get("detail-type") or []):
                continue
            pattern = without_own_role_clause(pattern)
            out.append(Route(logical_id, event_id, pattern, compile_matcher(pattern)))
    return out


def without_own_role_clause(pattern: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pattern less its clause on who acted (``detail.$or`` over ``userIdentity``): it names
    the deployed stack's role ARNs, which a replay cannot know, and a replay ignores Perimeter's
    own roles itself (``self_role_pattern``, any account, the stack named on the command line)."""
    detail = pattern.get("detail")
    clause = detail.get("$or") if isinstance(detail, Mapping) else None
    if not isinstance(clause, list) or not all(
        isinstance(b, Mapping) and set(b) == {"userIdentity"} for b in clause
    ):
        return pattern
    return {**pattern, "detail": {k: v for k, v in detail.items() if k != "$or"}}


def self_role_pattern(template_path: Path, stack_name: str) -> re.Pattern[str] | None:
    """Perimeter's own roles (the template's ``PERIMETER_SELF_ROLES``), as a pattern over role
    names in any region and account: their calls are Perimeter's own remediation, which the
    event path's loop guard ignores, and so does replay."""
    template = load_template(template_path)
    env = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    joined = env.get("PERIMETER_SELF_ROLES")
    refs = joined.get("Fn::Join", [None, []])[1] if isinstance(joined, Mapping) else []
    names = []
    for ref in refs:
        role = template["Resources"].get(ref.get("Ref") if isinstance(ref, Mapping) else None, {})
        name = role.get("Properties", {}).get("RoleName")
        text = name.get("Fn::Sub") if isinstance(name, Mapping) else name
        if not isinstance(text, str):
            continue
        parts = re.split(r"(\$\{[^}]+\})", text)
        names.append(
            "".join(_SUB.get(p, re.escape(p)) if p.startswith("${") else re.escape(p) for p in parts)
        )
    if not names:
        return None
    stack = re.escape(stack_name)
    return re.compile("|".join(f"(?:{n})" for n in names).replace(_STACK, stack))


_STACK = "\x00stack\x00"
_SUB = {"${AWS::StackName}": _STACK, "${AWS::Region}": "[a-z0-9-]+", "${AWS::AccountId}": "[0-9]{12}"}


def _plain_strings(value: Any) -> list[str] | None:
    """The values of a pattern field when all of them are plain strings, else None."""
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    return None


class Router:
    """Which routes a record reaches. ``routes_for`` returns ``(envelope, routes)``."""

    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        self._index: dict[tuple[str, str], list[Route]] = {}
        self._always: list[Route] = []
        for route in routes:
            detail = route.pattern.get("detail")
            detail = detail if isinstance(detail, Mapping) and "$or" not in route.pattern else {}
            sources = _plain_strings(detail.get("eventSource")) if "$or" not in detail else None
            names = _plain_strings(detail.get("eventName")) if "$or" not in detail else None
            if sources is None or names is None:
                self._always.append(route)
                continue
            for source in sources:
                for name in names:
                    self._index.setdefault((source, name), []).append(route)

    @property
    def event_keys(self) -> list[tuple[str, str]]:
        """The (eventSource, eventName) pairs the index routes, for the Lake/Athena SQL."""
        return sorted(self._index)

    @property
    def unindexed(self) -> list[Route]:
        return list(self._always)

    def routes_for(self, record: Mapping[str, Any]) -> tuple[Mapping[str, Any] | None, list[Route]]:
        detail = record.get("detail") if is_envelope(record) else record
        if not isinstance(detail, Mapping):
            return None, []
        candidates = self._index.get((detail.get("eventSource"), detail.get("eventName")))  # type: ignore[arg-type]
        if candidates is None and not self._always:
            return None, []
        # Always the envelope EventBridge would build from the CloudTrail record itself: a
        # stored envelope (published samples) may carry redacted or stale fields of its own.
        envelope = wrap_in_envelope(detail)
        chosen = [r for r in (candidates or ()) if r.match(envelope)]
        chosen.extend(r for r in self._always if r.match(envelope))
        return envelope, chosen
