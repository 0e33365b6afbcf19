"""The last step of every acting stage: tell Security Hub, SNS, the metrics and the log, once.

Shared so that every function reports the same way: all findings in one import (a rejected
finding raises, so the event is retried and nothing is lost), one SNS message per decision, EMF
metrics by control, and the decision logged and returned as the handler's summary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

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
    if findings:
        rt.securityhub.import_findings(findings)
    sent = note is not None and rt.sns is not None
    if sent:
        rt.sns.publish(note)
    record_findings(findings)
    summary = {
        "status": "remediated" if remediated else "reported",
        "event_id": call.event_id,
        "event_name": call.event_name,
        "actor": call.actor.display,
        **details,
        "findings": [f["Id"] for f in findings],
        "notification": note.subject if sent and note is not None else None,
    }
    logger.info("decision", extra={"summary": summary})
    return summary
