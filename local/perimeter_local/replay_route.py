"""Route replayed CloudTrail records to the template's functions, as EventBridge would.

Most of a trail's records are reads and calls no rule wants, so routing first looks the
record's ``(eventSource, eventName)`` up in an index built from the patterns' own value lists
(one dict lookup rejects a non-routed record), and only the candidates go through the full
matcher (``patterns.compile_matcher``), wrapped in the EventBridge envelope exactly as
``perimeter.events.wrap_in_envelope`` wraps a live record. A pattern that does not list plain
event sources and names is matched against every record: the index only ever narrows by what
the pattern itself says.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perimeter.events import is_envelope, wrap_in_envelope

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
    """Every EventBridge rule of every function in the template, compiled."""
    template = load_template(template_path)
    out = []
    for logical_id, res in template["Resources"].items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        for event_id, ev in (res.get("Properties", {}).get("Events") or {}).items():
            if ev.get("Type") not in ("EventBridgeRule", "CloudWatchEvent"):
                continue
            pattern = ev["Properties"]["Pattern"]
            out.append(Route(logical_id, event_id, pattern, compile_matcher(pattern)))
    return out


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
