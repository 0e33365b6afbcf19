"""AWS calls on a clock: a botocore hook that records when each call starts and returns.

Shared by both benchmark workers (Perimeter's venv and Cloud Custodian's), so both tools are
timed by the same code. Hooked by wrapping ``botocore.session.Session.__init__``: every session
either tool builds, and every client made from it, reports to one ``CallClock``.

``before-call`` fires before a request is built, ``after-call`` once its response is parsed
(``after-call-error`` when the call failed): the interval is the call's full round trip as the
caller sees it. Only botocore's documented event names are used.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any


@dataclass
class Call:
    name: str  # "<service>.<Operation>", e.g. "ec2.RevokeSecurityGroupIngress"
    start: float
    end: float | None = None


class CallClock:
    def __init__(self) -> None:
        self.enabled = False
        self.calls: list[Call] = []
        self._open = threading.local()

    def _before(self, event_name: str = "", **_: Any) -> None:
        if self.enabled:
            _, service, op = event_name.split(".", 2)
            call = Call(f"{service}.{op}", time.perf_counter())
            self.calls.append(call)
            stack = getattr(self._open, "stack", None)
            if stack is None:
                stack = self._open.stack = []
            stack.append(call)

    def _after(self, event_name: str = "", **_: Any) -> None:
        stack = getattr(self._open, "stack", None)
        if self.enabled and stack:
            stack.pop().end = time.perf_counter()

    def take(self) -> list[Call]:
        calls, self.calls = self.calls, []
        return calls

    def install(self) -> CallClock:
        import botocore.session

        original = botocore.session.Session.__init__
        clock = self

        def init(session: Any, *args: Any, **kwargs: Any) -> None:
            original(session, *args, **kwargs)
            session.register("before-call", clock._before)
            session.register("after-call", clock._after)
            session.register("after-call-error", clock._after)

        botocore.session.Session.__init__ = init  # type: ignore[method-assign]
        return self


def depth_until(calls: list[Call], prefix: str) -> int | None:
    """Sequential round trips up to and including the first call named ``prefix*``: the longest
    chain of calls each starting after the previous one returned. Calls that overlap count once."""
    target = next((c for c in calls if c.name.startswith(prefix)), None)
    if target is None:
        return None
    depth: dict[int, int] = {}
    for i, c in enumerate(calls):
        before = [depth[j] for j, p in enumerate(calls[:i]) if p.end is not None and p.end <= c.start]
        depth[i] = 1 + max(before, default=0)
        if c is target:
            return depth[i]
    return None
