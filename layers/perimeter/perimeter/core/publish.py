"""The last step of every acting stage: tell Security Hub, SNS, the metrics and the log, once.

Shared so that every function reports the same way: all findings in one import (a rejected
finding raises, so the event is retried and nothing is lost), one SNS message per decision, EMF
metrics by control, and the decision logged and returned as the handler's summary.

The writes here do not depend on one another: the finding import, the notification and the
idempotency completion run together on the container's pool (``Runtime.in_parallel``), and the
invocation fails if any of them fails. The claim is then released naming the parts that went
out (``once.Claim.sent``: "findings", "note"), so Lambda's retry (or a redrive) sends what was
not sent and not again what was: one message per event, even when the import or the completion
failed beside it. Only a process killed between a send and the release (no ``except`` runs)
can send a part twice: at least once.

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

from perimeter.core import once
from perimeter.core.events import ApiCall
from perimeter.core.report import Notification
from perimeter.core.runtime import Runtime
from perimeter.core.telemetry import logger, record_findings

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
    # what a failed earlier attempt at this event already sent (its released claim says)
    done = claim.sent if claim is not None else set()
    summary = {
        "status": "remediated" if remediated else "reported",
        "event_id": call.event_id,
        "event_name": call.event_name,
        "actor": call.actor.display,
        **details,
        "findings": [f["Id"] for f in findings],
        "notification": note.subject if sent and note is not None else None,
    }
    to_import, to_notify = _unsent(call, findings, note if sent else None, done)
    key, item = _write_outbox(call, rt, to_import, to_notify, summary) if outbox else (None, {})
    if before_send is not None:
        before_send()
    gone_out: set[str] = set()
    writes = _sends(rt, claim, gone_out, to_import, to_notify)
    if claim is not None:
        writes.append(lambda: claim.complete(summary))
    try:
        rt.in_parallel(*writes)
    except Exception as exc:
        if key and gone_out:
            _drop_sent(rt, item, gone_out, exc)
        raise
    record_findings(findings)
    if key:
        rt.client("dynamodb").delete_item(TableName=rt.settings.idempotency_table, Key={"id": {"S": key}})
    logger.info("decision", extra={"summary": summary})
    return summary


def _unsent(
    call: ApiCall, findings: Sequence[dict[str, Any]], note: Notification | None, done: set[str]
) -> tuple[list[dict[str, Any]], Notification | None]:
    """The parts of the report an earlier attempt did not send: (findings, message)."""
    if findings and "findings" in done:
        logger.info("findings imported by an earlier attempt", extra={"event_id": call.event_id})
    if note is not None and "note" in done:
        logger.info("message sent by an earlier attempt", extra={"event_id": call.event_id})
    return (
        list(findings) if "findings" not in done else [],
        note if "note" not in done else None,
    )


def _sends(
    rt: Runtime,
    claim: once.Claim | None,
    gone_out: set[str],
    findings: list[dict[str, Any]],
    note: Notification | None,
) -> list[Callable[[], Any]]:
    """The import and the notification as writes for ``in_parallel``; each, once through,
    adds its part to ``gone_out`` and to the claim's ``sent`` (named by the release if another
    write fails)."""

    def send(part: str, write: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            write()
            gone_out.add(part)
            if claim is not None:
                claim.sent.add(part)

        return run

    writes: list[Callable[[], Any]] = []
    if findings:
        writes.append(send("findings", lambda: rt.securityhub.import_findings(findings)))
    if note is not None:
        writes.append(send("note", lambda: rt.sns.publish(note)))
    return writes


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


def _drop_sent(rt: Runtime, item: dict[str, Any], parts: set[str], exc: Exception) -> None:
    """Part of the report went out beside a write that failed: the retry may resume from the
    outbox, which must then not send that part again (a write on this failure path only)."""
    try:
        saved = json.loads(item["report"]["S"])
        if "note" in parts:
            saved["note"] = None
        if "findings" in parts:
            saved["findings"] = []
        item["report"] = {"S": json.dumps(saved, default=str)}
        rt.client("dynamodb").put_item(TableName=rt.settings.idempotency_table, Item=item)
    except Exception as again:  # noqa: BLE001 - the first failure is the one to raise
        exc.add_note(f"and dropping the sent parts from the outbox failed: {again!r}")


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
    # Inside a claim (``resume_in_stage``), what a released attempt sent is skipped and what
    # goes out here is named by the release if the rest fails.
    claim = once.current()
    done = claim.sent if claim is not None else set()
    if findings and "findings" not in done:
        rt.securityhub.import_findings(findings)
        done.add("findings")
    if note is not None and rt.sns is not None and "note" not in done:
        rt.sns.publish(note)
        done.add("note")
    record_findings(findings)
