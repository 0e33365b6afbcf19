"""The last step of every acting stage: tell Security Hub, SNS, the metrics and the log, once.

Shared so that every function reports the same way: all findings in one import (a rejected
finding raises, so the event is retried and nothing is lost), one SNS message per decision, EMF
metrics by control, and the decision logged and returned as the handler's summary.

The writes here do not depend on one another: the finding import, the notification and the
idempotency completion run together on the container's pool (``Runtime.in_parallel``), and the
invocation fails if any of them fails (the claim is then released, so Lambda's retry redoes
them all: a finding id is deterministic, so a repeat updates rather than duplicates).

The outbox (``outbox=True``): a path whose remediation leaves nothing to judge on a retry (a
default group emptied, a flow log created) would, after a failure between acting and reporting,
find the resource compliant and report nothing: the findings and the message of what Perimeter
did would be lost. So the report is written to the idempotency table before it is sent and
deleted once sent; a retry of the same event that finds it sends it (``resume``). SgGuard does
not need it: its retry rebuilds the report from the write-ahead audit record.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from perimeter import once
from perimeter.events import ApiCall
from perimeter.report import Notification
from perimeter.runtime import Runtime
from perimeter.telemetry import logger, record_findings

DRY_RUN_NOTE = "Dry run: Perimeter changed nothing (the dry-run switch is on); in enforce it would act."
#: ASFF's limit on Description.
_MAX_DESCRIPTION = 1024


def mark_dry_run(finding: Mapping[str, Any]) -> dict[str, Any]:
    """Say on the finding itself that dry run is why nothing was done: a reviewer reading a
    FAILED finding must not take it for a remediation that failed or was never tried."""
    out = dict(finding)
    note = " " + DRY_RUN_NOTE
    text = str(out.get("Description", ""))
    out["Description"] = text[: _MAX_DESCRIPTION - len(note)] + note
    out["ProductFields"] = {**(out.get("ProductFields") or {}), "perimeter/dry_run": "true"}
    return out


def publish(
    call: ApiCall,
    rt: Runtime,
    findings: Sequence[dict[str, Any]],
    note: Notification | None,
    *,
    remediated: bool,
    details: Mapping[str, Any],
    outbox: bool = False,
    before_send: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """Report once. ``before_send`` runs after the outbox write and before anything is sent
    (the default-SG path marks its audit record complete there: never before its report is
    safe)."""
    claim = once.current()
    if claim is not None and not claim.claimed:
        claim.take()  # nothing written ahead (detect only): claim before telling anyone
    if rt.policy.dry_run:
        findings = [mark_dry_run(f) for f in findings]
    sent = note is not None and rt.sns is not None
    summary = {
        "status": "remediated" if remediated else "reported",
        "event_id": call.event_id,
        "event_name": call.event_name,
        "actor": call.actor.display,
        **details,
        "findings": [f["Id"] for f in findings],
        "notification": note.subject if sent and note is not None else None,
    }
    key, item = _write_outbox(call, rt, findings, note, summary) if outbox else (None, {})
    if before_send is not None:
        before_send()
    notified: list[bool] = []

    def notify() -> None:
        rt.sns.publish(note)
        notified.append(True)

    writes: list[Callable[[], Any]] = []
    if findings:
        writes.append(lambda: rt.securityhub.import_findings(findings))
    if sent:
        writes.append(notify)
    if claim is not None:
        writes.append(lambda: claim.complete(summary))
    try:
        rt.in_parallel(*writes)
    except Exception as exc:
        if key and notified:
            _drop_sent_note(rt, item, exc)
        raise
    record_findings(findings)
    if key:
        rt.client("dynamodb").delete_item(TableName=rt.settings.idempotency_table, Key={"id": {"S": key}})
    logger.info("decision", extra={"summary": summary})
    return summary


def _write_outbox(
    call: ApiCall,
    rt: Runtime,
    findings: Sequence[dict[str, Any]],
    note: Notification | None,
    summary: Mapping[str, Any],
) -> tuple[str | None, dict[str, Any]]:
    """Write the report to the outbox before anything is sent: ``(key, item)``, or
    ``(None, {})`` when there is no outbox or the report is too large for one item."""
    key = _outbox_key(call, rt)
    if not key:
        return None, {}
    body = json.dumps(
        {"findings": list(findings), "note": asdict(note) if note else None, "summary": summary},
        default=str,
    )
    if len(body) >= _MAX_OUTBOX:  # DynamoDB's item limit; a larger report is sent unguarded
        return None, {}
    item = {
        "id": {"S": key},
        "report": {"S": body},
        "expiration": {"N": str(int(time.time()) + rt.settings.idempotency_ttl_seconds)},
    }
    rt.client("dynamodb").put_item(TableName=rt.settings.idempotency_table, Item=item)
    return key, item


def _drop_sent_note(rt: Runtime, item: dict[str, Any], exc: Exception) -> None:
    """The message went out beside a write that failed: the retry resumes from the outbox,
    which must then not send it again (a write on this failure path only)."""
    try:
        saved = json.loads(item["report"]["S"])
        item["report"] = {"S": json.dumps({**saved, "note": None}, default=str)}
        rt.client("dynamodb").put_item(TableName=rt.settings.idempotency_table, Item=item)
    except Exception as again:  # noqa: BLE001 - the first failure is the one to raise
        exc.add_note(f"and dropping the sent message from the outbox failed: {again!r}")


def pending(call: ApiCall, rt: Runtime) -> bool:
    """Whether the outbox holds this event's report, unsent or sent by a retry (one read)."""
    key = _outbox_key(call, rt)
    if not key:
        return False
    resp = rt.client("dynamodb").get_item(
        TableName=rt.settings.idempotency_table, Key={"id": {"S": key}}, ConsistentRead=True
    )
    return bool(resp.get("Item"))


def resume(call: ApiCall, rt: Runtime) -> dict[str, Any] | None:
    """Send the report an earlier attempt at this event wrote but did not finish sending;
    None when there is none (the usual case: one read)."""
    key = _outbox_key(call, rt)
    if not key:
        return None
    resp = rt.client("dynamodb").get_item(
        TableName=rt.settings.idempotency_table, Key={"id": {"S": key}}, ConsistentRead=True
    )
    item = resp.get("Item")
    if not item or "report" not in item:
        return None  # none, or one a retry already sent
    saved = json.loads(item["report"]["S"])
    note = Notification(**saved["note"]) if saved.get("note") else None
    logger.info("resuming an unsent report", extra={"event_id": call.event_id})
    _send(rt, saved["findings"], note)
    # Kept, emptied, rather than deleted: the attempt that wrote it released the event's claim,
    # so this is what tells a later duplicate that the report went out (see ``pending``).
    sent = {"id": {"S": key}, "sent": {"BOOL": True}, "expiration": item["expiration"]}
    rt.client("dynamodb").put_item(TableName=rt.settings.idempotency_table, Item=sent)
    summary: dict[str, Any] = saved["summary"]
    return summary


_MAX_OUTBOX = 350_000


def _outbox_key(call: ApiCall, rt: Runtime) -> str | None:
    if not call.event_id or not rt.settings.idempotency_table:
        return None
    return f"perimeter-report#{call.event_id}"


def _send(rt: Runtime, findings: Sequence[dict[str, Any]], note: Notification | None) -> None:
    if findings:
        rt.securityhub.import_findings(findings)
    if note is not None and rt.sns is not None:
        rt.sns.publish(note)
    record_findings(findings)
