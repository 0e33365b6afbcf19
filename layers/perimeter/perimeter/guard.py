"""Guards that run before anything touches AWS (pure).

A failed call changed nothing; a call made by one of Perimeter's own roles is its own
remediation coming back through CloudTrail (acting on it would loop); an event for another
account or region is not this deployment's to change. Duplicates are handled by idempotency
around the acting stage (``Runtime.run_once``), since detecting them needs the table.
"""

from __future__ import annotations

from perimeter.events import ApiCall
from perimeter.runtime import Settings


def skip_reason(call: ApiCall, settings: Settings) -> str | None:
    """Why this event must be a no-op, or None to go on."""
    if call.failed:
        return f"the call failed ({call.error_code}): nothing changed"
    own_role = bool(call.actor.role_name) and call.actor.role_name in settings.self_roles
    if own_role and (not settings.account_id or call.actor.account_id in (None, settings.account_id)):
        return f"made by Perimeter's own role {call.actor.role_name}"
    if settings.account_id and call.account != settings.account_id:
        return f"account {call.account} is not this deployment's ({settings.account_id})"
    if call.region != settings.region:
        return f"region {call.region} is not this deployment's ({settings.region})"
    return None
