"""The flow-log event path (PER-FL-1): CreateVpc and DeleteFlowLogs.

CreateVpc names its VPC in the response. DeleteFlowLogs does not: the record carries only
the flow-log ids (in the wrapped ``DeleteFlowLogsRequest`` form), and a deleted flow log can
no longer be described, so every VPC of the region is checked (DescribeVpcs + one
DescribeFlowLogs): whichever lost its last active ALL-traffic flow log is found, whatever the
deleted one was attached to. Model deployments check their VPC in ``model_service``.
"""

from __future__ import annotations

from typing import Any

from perimeter.events import ApiCall, items, unwrap
from perimeter.guard import admit
from perimeter.posture import judge
from perimeter.posture_service import act_and_report, flow_log_adapter, flow_log_issues
from perimeter.runtime import Runtime
from perimeter.telemetry import logger

FLOW_LOG_EVENTS = frozenset({"CreateVpc", "DeleteFlowLogs"})


def deleted_flow_log_ids(call: ApiCall) -> list[str]:
    """Ids from the wrapped form (``DeleteFlowLogsRequest.FlowLogId``, one or a list) or the
    older flat ``flowLogIds``."""
    req = unwrap(call.request)
    wrapped = req.get("DeleteFlowLogsRequest") or {}
    raw = wrapped.get("FlowLogId") or req.get("flowLogIds") or req.get("FlowLogIds") or req.get("flowLogId")
    out = []
    for v in items(raw):
        out.extend(str(x) for x in (v if isinstance(v, list) else [v]) if x)
    return out


def created_vpc_id(call: ApiCall) -> str | None:
    resp = unwrap(call.response)
    vpc = resp.get("vpc") or (resp.get("CreateVpcResponse") or {}).get("vpc") or {}
    return vpc.get("vpcId") or None


def handle(event: Any, rt: Runtime, context: Any = None) -> dict[str, Any]:
    call, ignored = admit(event, rt.settings)
    if ignored:
        return ignored
    if call.event_name not in FLOW_LOG_EVENTS:
        return {
            "status": "ignored",
            "reason": f"{call.event_name} is not a flow-log event",
            "event_id": call.event_id,
        }
    adapter = flow_log_adapter(rt)
    deleted: list[str] = []
    if call.event_name == "CreateVpc":
        vpc_id = created_vpc_id(call)
        if not vpc_id:
            logger.error(
                "CreateVpc record without responseElements.vpc.vpcId", extra={"event_id": call.event_id}
            )
            raise ValueError("CreateVpc record names no VPC (responseElements.vpc.vpcId)")
        if not adapter.vpc_exists(vpc_id):
            logger.info("vpc gone", extra={"vpc_id": vpc_id})
            return {"status": "resource-gone", "event_id": call.event_id, "gone": [f"VPC {vpc_id}"]}
        vpcs = [vpc_id]
        why = "It was just created."
    else:
        deleted = deleted_flow_log_ids(call)
        vpcs = adapter.vpc_ids()
        why = ""
    issues = flow_log_issues(call, rt, vpcs, why=why, deleted=deleted)
    judged = judge(issues, rt.policy, principal_arn=call.actor.arn)
    base = {
        "event_id": call.event_id,
        "event_name": call.event_name,
        "vpcs": vpcs,
        "deleted_flow_logs": deleted,
    }
    if not judged:
        logger.info("no violation", extra={"vpcs": vpcs})
        return {"status": "compliant", **base}
    return rt.run_once(call.event_id, lambda: act_and_report(call, judged, rt, extra=base), context)
