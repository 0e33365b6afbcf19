"""The last step of every acting stage: tell Security Hub, SNS, the metrics and the log, once.

Shared so that every function reports the same way: all findings in one import (a rejected
finding raises, so the event is retried and nothing is lost), one SNS message per decision, EMF
metrics by control, and the decision logged and returned as the handler's summary.

The writes here do not depend on one another: the finding import, the notification and the
idempotency completion run together on the container's pool (``Runtime.in_parallel``), and the
invocation fails if any of them fails (the claim is then released, so Lambda's retry redoes
them all: a finding id is deterministic, so a repeat updates rather than duplicates).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from perimeter import once
from perimeter.events import ApiCall
from perimeter.report import Notification
from perimeter.runtime import Runtime
from perimeter.telemetry import logger, record_findings


def publish(
    call: ApiCall,
    rt: Runtime,
    findings: Sequence[dict[str, Any]],
    note: Notification | None,
    *,
    remediated: bool,
    details: Mapping[str, Any],
) -> dict[str, Any]:
    claim = once.current()
    if claim is not None and not claim.claimed:
        claim.take()  # nothing written ahead (detect only): claim before telling anyone
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
    writes: list[Callable[[], Any]] = []
    if findings:
        writes.append(lambda: rt.securityhub.import_findings(findings))
    if sent:
        writes.append(lambda: rt.sns.publish(note))
    if claim is not None:
        writes.append(lambda: claim.complete(summary))
    rt.in_parallel(*writes)
    record_findings(findings)
    logger.info("decision", extra={"summary": summary})
    return summary
