"""Which runtime acts on an event: the container's own, unless organization mode says otherwise.

Every handler calls ``runtime_for`` on every event, so this module stays tiny and imports
nothing: in account mode (no ``PERIMETER_MEMBER_ROLE_NAME`` in the environment) it returns the
container's runtime and the cold start imports nothing more. Organization mode's machinery
(``perimeter.core.accounts``: member sessions, assumed roles, per-account policy) is imported on the
first event that needs it.
"""

from __future__ import annotations

import os
from typing import Any


def enabled() -> bool:
    """Organization mode: template.yaml sets the member role's name only when Mode=organization."""
    return bool((os.environ.get("PERIMETER_MEMBER_ROLE_NAME") or "").strip())


def runtime_for(event: Any, home: Any) -> Any:
    """``home`` in account mode; else the runtime of the event's account and region."""
    if not enabled():
        return home
    from perimeter.core.accounts import runtime_for as of_event

    return of_event(event, home)
