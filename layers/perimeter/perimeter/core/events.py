"""The edge: turn an EventBridge "AWS API Call via CloudTrail" event into a typed ``ApiCall``.

Everything after this module works on ``ApiCall`` and never looks at raw JSON shapes again.
A bad event fails here, once, with a message that says what was wrong (``MalformedEvent``).

Why not pydantic: a handler's cold import must stay within 1.5x of ``import boto3``; pydantic
alone costs more than half of that budget (see FACTS.md). Frozen dataclasses with explicit
checks give the same guarantees at no import cost.

Real records come in more shapes than the documentation shows (see the corpus): raw records or
the EventBridge envelope, Panther's lower-cased ``userIdentity`` keys and string ports, and
the newer EC2 APIs' ``{"tag": .., "content": ..}`` wrapped scalars. This module tolerates them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CLOUDTRAIL_DETAIL_TYPE = "AWS API Call via CloudTrail"


class MalformedEvent(ValueError):
    """The input is not a CloudTrail API-call event we can act on. Never retried usefully:
    the handler logs it and lets it fail to the dead-letter queue."""


def _ci_get(mapping: Mapping[str, Any] | None, key: str) -> Any:
    """Case-insensitive lookup: Panther stores ``userIdentity`` with lower-cased keys."""
    if not isinstance(mapping, Mapping) or not mapping:
        return None
    if key in mapping:
        return mapping[key]
    lowered = key.lower()
    for k, v in mapping.items():
        if isinstance(k, str) and k.lower() == lowered:
            return v
    return None


def unwrap(value: Any) -> Any:
    """Strip the ``{"tag": n, "content": x}`` wrappers newer EC2 APIs put around scalars."""
    if isinstance(value, Mapping):
        if "content" in value and set(value) <= {"tag", "content"}:
            return unwrap(value["content"])
        return {k: unwrap(v) for k, v in value.items() if k != "tag"}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def items(value: Any) -> list[Any]:
    """CloudTrail writes lists as ``{"items": [...]}``, an empty ``{}``, a bare list, or (for
    the wrapped forms) a single object where a list would hold one; return a plain list."""
    if value is None or value == {} or value == "":
        return []
    if isinstance(value, Mapping):
        if "items" in value:
            inner = value["items"]
            return list(inner) if isinstance(inner, list) else [inner]
        return [value]
    if isinstance(value, list):
        return value
    return [value]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made the call."""

    arn: str | None
    type: str | None
    account_id: str | None
    principal_id: str | None
    role_name: str | None
    invoked_by: str | None

    @property
    def display(self) -> str:
        return self.arn or self.principal_id or self.type or "unknown"


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One CloudTrail management event, as much of it as the controls need."""

    event_id: str | None
    event_name: str
    event_source: str
    event_time: str
    region: str
    account: str
    actor: Actor
    request: Mapping[str, Any]
    response: Mapping[str, Any]
    error_code: str | None
    error_message: str | None

    @property
    def failed(self) -> bool:
        return bool(self.error_code)


def _actor(identity: Any) -> Actor:
    if not isinstance(identity, Mapping):
        return Actor(None, None, None, None, None, None)
    arn = _text(_ci_get(identity, "arn"))
    session = _ci_get(identity, "sessionContext") or {}
    issuer = _ci_get(session, "sessionIssuer") or {}
    role_name = None
    if _ci_get(issuer, "type") == "Role":
        role_name = _text(_ci_get(issuer, "userName"))
    if not role_name and isinstance(arn, str) and ":assumed-role/" in arn:
        role_name = arn.split(":assumed-role/", 1)[1].split("/", 1)[0]
    return Actor(
        arn=arn,
        type=_text(_ci_get(identity, "type")),
        account_id=_str_or_none(_ci_get(identity, "accountId")),
        principal_id=_text(_ci_get(identity, "principalId")),
        role_name=role_name,
        invoked_by=_text(_ci_get(identity, "invokedBy")),
    )


def _text(value: Any) -> str | None:
    """A string field, or None: a record that puts an object where CloudTrail writes a string
    says nothing we can use there (and must not reach a set lookup or a log line as one)."""
    return value if isinstance(value, str) and value else None


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


#: the longest text Perimeter takes for an event's id, account or region: CloudTrail writes a
#: 36-character event id, a 12-digit account and a region name; anything far longer (or not a
#: string at all) is not a record Perimeter understood, and an id becomes a DynamoDB key
#: (at most 2,048 bytes)
MAX_FIELD = 128


def _field(value: Any, name: str) -> str | None:
    """A scalar field of the record as text, or None when absent; an object, a list or an
    over-long text raises: it would otherwise become a key, a filter value or a log line."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MalformedEvent(f"{name} must be a string, got {type(value).__name__}")
    text = str(value)
    if len(text) > MAX_FIELD:
        raise MalformedEvent(f"{name} is {len(text)} characters long (at most {MAX_FIELD})")
    return text


#: the shape of an EC2 resource id (prefix, a dash, letters and digits): what an event names
#: goes into EC2 filters and DynamoDB keys only if it has it
_EC2_ID = re.compile(r"[a-z]{1,8}-[0-9A-Za-z]{1,64}")


def ec2_id(value: Any, prefix: str, where: str) -> str:
    """An EC2 resource id taken from an event (``sg-...``, ``eni-...``, ``i-...``), checked:
    anything else (a list, an object, a made-up text) raises ``MalformedEvent``."""
    if not isinstance(value, str) or not value.startswith(f"{prefix}-") or not _EC2_ID.fullmatch(value):
        shown = value if isinstance(value, str) else type(value).__name__
        raise MalformedEvent(f"{where}: {str(shown)[:80]!r} is not a {prefix}- id")
    return value


def record_object(value: Any, name: str) -> Mapping[str, Any]:
    """A part of the record that must be an object (``CreateFlowLogsRequest``, ``vpc``, ...):
    anything else (a list, a text) raises ``MalformedEvent``."""
    if not isinstance(value, Mapping):
        raise MalformedEvent(f"{name} must be an object, got {type(value).__name__}")
    return value


def is_envelope(event: Mapping[str, Any]) -> bool:
    return "detail" in event and ("detail-type" in event or "source" in event)


def parse_event(event: Any) -> ApiCall:
    """Parse an EventBridge envelope (or, for replay and tests, a bare CloudTrail record).

    Raises:
        MalformedEvent: not a mapping, not a CloudTrail API call, or a required field missing.
    """
    if not isinstance(event, Mapping):
        raise MalformedEvent(f"event must be a JSON object, got {type(event).__name__}")
    if is_envelope(event):
        detail_type = event.get("detail-type")
        if detail_type not in (CLOUDTRAIL_DETAIL_TYPE, None, "..."):
            raise MalformedEvent(f"detail-type {detail_type!r} is not {CLOUDTRAIL_DETAIL_TYPE!r}")
        detail = event["detail"]
        envelope_account = _str_or_none(event.get("account"))
        envelope_region = event.get("region")
    else:
        detail = event
        envelope_account = None
        envelope_region = None
    if not isinstance(detail, Mapping):
        raise MalformedEvent("detail must be a JSON object")
    missing = [k for k in ("eventName", "eventSource") if not isinstance(detail.get(k), str)]
    if missing:
        raise MalformedEvent(f"detail lacks {', '.join(missing)}: not a CloudTrail record")
    actor = _actor(detail.get("userIdentity"))
    account = (
        _field(detail.get("recipientAccountId"), "recipientAccountId")
        or _field(envelope_account, "account")
        or actor.account_id
    )
    region = _field(detail.get("awsRegion"), "awsRegion") or _field(envelope_region, "region")
    if not account:
        raise MalformedEvent("no account: neither recipientAccountId nor envelope account")
    if not region or not isinstance(region, str):
        raise MalformedEvent("no region: neither awsRegion nor envelope region")
    request = detail.get("requestParameters")
    response = detail.get("responseElements")
    if request is not None and not isinstance(request, Mapping):
        raise MalformedEvent("requestParameters must be an object or null")
    if response is not None and not isinstance(response, Mapping):
        raise MalformedEvent("responseElements must be an object or null")
    event_id = _field(detail.get("eventID"), "eventID")
    return ApiCall(
        event_id=event_id,
        event_name=detail["eventName"],
        event_source=detail["eventSource"],
        event_time=str(detail.get("eventTime") or ""),
        region=region,
        account=account,
        actor=actor,
        request=request or {},
        response=response or {},
        error_code=detail.get("errorCode"),
        error_message=detail.get("errorMessage"),
    )


def wrap_in_envelope(record: Mapping[str, Any]) -> dict[str, Any]:
    """Put a bare CloudTrail record into the envelope EventBridge delivers, so replayed
    records travel the same path as live ones."""
    if is_envelope(record):
        return dict(record)
    source = str(record.get("eventSource", "")).split(".amazonaws.com")[0]
    return {
        "version": "0",
        "id": str(record.get("eventID") or "replay"),
        "detail-type": CLOUDTRAIL_DETAIL_TYPE,
        "source": f"aws.{source}",
        "account": str(record.get("recipientAccountId") or ""),
        "time": str(record.get("eventTime") or ""),
        "region": str(record.get("awsRegion") or ""),
        "resources": [],
        "detail": dict(record),
    }
