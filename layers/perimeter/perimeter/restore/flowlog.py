"""Undo PER-FL-1's remediation from its audit record: delete the flow log Perimeter created.

``restore.restore`` dispatches here for ``action == "create-flow-log"`` (one line there). A
record written ahead of a crash may list no flow-log id yet: the flow log is then found on the
VPC by what Perimeter asked for (ALL traffic, its log format, its destination), never by guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _created_by_us(fl: Mapping[str, Any], request: Mapping[str, Any]) -> bool:
    dest = request.get("LogGroupName") or request.get("LogDestination")
    return (
        fl.get("TrafficType") == request.get("TrafficType")
        and fl.get("LogFormat") == request.get("LogFormat")
        and dest in (fl.get("LogGroupName"), fl.get("LogDestination"))
    )


def restore_flow_log(session: Any, record: Mapping[str, Any]) -> dict[str, Any]:
    ec2 = session.client("ec2")
    vpc_id = str(record["vpc_id"])
    ids = list(record.get("flow_log_ids") or [])
    if not ids:
        found = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [vpc_id]}])["FlowLogs"]
        ids = [f["FlowLogId"] for f in found if _created_by_us(f, record.get("request", {}))]
    if ids:
        resp = ec2.delete_flow_logs(FlowLogIds=ids)
        failed = [u.get("ResourceId") for u in resp.get("Unsuccessful") or []]
    else:
        failed = []
    return {
        "audit_id": record["audit_id"],
        "vpc_id": vpc_id,
        "deleted_flow_logs": [i for i in ids if i not in failed],
        "not_deleted": failed,
        "warning": (
            "PER-FL-1 will create a flow log again unless the policy exempts the VPC or sets it to detect."
        ),
    }
