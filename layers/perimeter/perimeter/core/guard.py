"""Guards that run before anything touches AWS.

A failed call changed nothing; a call made by one of Perimeter's own roles is its own
remediation coming back through CloudTrail (acting on it would loop); an event for another
account or region is not this deployment's to change. Duplicates are handled by idempotency
around the acting stage (``Runtime.run_once``), since detecting them needs the table.

``admit`` is the first step of every service: parse, tag the logs with the event id, guard.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from perimeter.core.events import ApiCall, parse_event
from perimeter.core.runtime import Settings
from perimeter.core.telemetry import logger


def skip_reason(call: ApiCall, settings: Settings, *, global_service: bool = False) -> str | None:
    """Why this event must be a no-op, or None to go on. A global service (IAM) records its
    calls in us-east-1 whatever region the deployment serves: no region check for it."""
    if call.failed:
        return f"the call failed ({call.error_code}): nothing changed"
    own_role = bool(call.actor.role_name) and call.actor.role_name in settings.self_roles
    if own_role and (not settings.account_id or call.actor.account_id in (None, settings.account_id)):
        return f"made by Perimeter's own role {call.actor.role_name}"
    if settings.account_id and call.account != settings.account_id:
        return f"account {call.account} is not this deployment's ({settings.account_id})"
    if not global_service and call.region != settings.region:
        return f"region {call.region} is not this deployment's ({settings.region})"
    return None


def admit(
    event: Any,
    settings: Settings,
    *,
    global_service: bool = False,
    routed: Collection[str] | None = None,
    kind: str = "",
) -> tuple[ApiCall, dict[str, Any] | None]:
    """Parse the event and guard it: ``(call, None)`` to go on, or ``(call, summary)`` of a
    no-op to return as it is. With ``routed``, a call not among them is a no-op too ("is not
    a ``kind`` event").

    Raises:
        MalformedEvent: the event is not a CloudTrail API call (it goes to the DLQ).
    """
    call = parse_event(event)
    logger.set_correlation_id(call.event_id)
    reason = skip_reason(call, settings, global_service=global_service)
    if reason:
        logger.info("event ignored", extra={"reason": reason, "event_name": call.event_name})
        return call, {"status": "ignored", "reason": reason, "event_id": call.event_id}
    if routed is not None and call.event_name not in routed:
        return call, {
            "status": "ignored",
            "reason": f"{call.event_name} is not a {kind} event",
            "event_id": call.event_id,
        }
    return call, None
