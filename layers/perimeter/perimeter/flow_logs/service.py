"""The flow-log event path (PER-FL-1): CreateVpc, DeleteFlowLogs, and the calls that fix or
end the problem, CreateFlowLogs and DeleteVpc.

Which VPCs are judged is the policy's choice (``flow_logs.scope``, default ``model-vpcs``: a
VPC holding a model-tier security group, or named in ``flow_logs.vpcs``). A DeleteFlowLogs
record carries only the flow-log ids and a deleted flow log can no longer be described, so
Perimeter keeps an index from flow-log id to VPC (``FlowLogIndex``: written on CreateFlowLogs
events and on its own creations) and judges the VPC the index names, plus the VPCs in scope.
Only the indexed VPC is told that the deleted flow log was its own; an id the index does not
know is reported as such. CreateFlowLogs and DeleteVpc make reads and Security Hub updates
only: they resolve the PER-FL-1 finding of a VPC that is covered again, or gone.
Model deployments judge their VPC in ``model_posture.service``.
"""

from __future__ import annotations

from typing import Any

from perimeter.core.events import ApiCall, MalformedEvent, ec2_id, items, record_object, unwrap
from perimeter.core.guard import admit
from perimeter.core.report import iso_now
from perimeter.core.runtime import Runtime
from perimeter.core.telemetry import logger
from perimeter.posture.act import (
    flow_log_adapter,
    flow_log_evaluation,
    flow_log_index,
    report_evaluation,
    vpc_resource,
)
from perimeter.posture.controls import Evaluation

FLOW_LOG_EVENTS = frozenset({"CreateVpc", "DeleteFlowLogs", "CreateFlowLogs", "DeleteVpc"})
#: The controls a VPC carries; a deleted VPC's findings of these are resolved.
VPC_CONTROLS = ("PER-FL-1", "PER-VPC-2")


def _ids(value: Any) -> list[str]:
    if isinstance(value, dict) and set(value) == {"item"}:
        value = value["item"]  # the XML-shaped ``flowLogIdSet: {"item": ...}``
    out: list[str] = []
    for v in items(value):
        out.extend(str(x) for x in (v if isinstance(v, list) else [v]) if x)
    return out


def deleted_flow_log_ids(call: ApiCall) -> list[str]:
    """Ids from the wrapped form (``DeleteFlowLogsRequest.FlowLogId``, one or a list) or the
    older flat ``flowLogIds``."""
    req = unwrap(call.request)
    wrapped = record_object(req.get("DeleteFlowLogsRequest") or {}, "DeleteFlowLogsRequest")
    return _ids(
        wrapped.get("FlowLogId") or req.get("flowLogIds") or req.get("FlowLogIds") or req.get("flowLogId")
    )


def created_flow_logs(call: ApiCall) -> tuple[list[str], list[str]]:
    """(resource ids, flow-log ids) of a CreateFlowLogs record, wrapped or flat."""
    req = unwrap(call.request)
    wrapped = record_object(req.get("CreateFlowLogsRequest") or req, "CreateFlowLogsRequest")
    resources = _ids(wrapped.get("ResourceId") or wrapped.get("resourceIds") or wrapped.get("ResourceIds"))
    resp = unwrap(call.response)
    wrapped_resp = record_object(resp.get("CreateFlowLogsResponse") or resp, "CreateFlowLogsResponse")
    ids = _ids(
        wrapped_resp.get("flowLogIdSet") or wrapped_resp.get("flowLogIds") or wrapped_resp.get("FlowLogIds")
    )
    return resources, ids


def created_vpc_id(call: ApiCall) -> str | None:
    resp = unwrap(call.response)
    wrapped = record_object(resp.get("CreateVpcResponse") or {}, "CreateVpcResponse")
    vpc = record_object(resp.get("vpc") or wrapped.get("vpc") or {}, "vpc")
    return _vpc_id(vpc.get("vpcId"))


def _deleted_vpc_id(call: ApiCall) -> str | None:
    req = unwrap(call.request)
    wrapped = record_object(req.get("DeleteVpcRequest") or req, "DeleteVpcRequest")
    return _vpc_id(wrapped.get("VpcId") or req.get("vpcId"))


def _vpc_id(value: Any) -> str | None:
    return ec2_id(value, "vpc", "the VPC") if value else None


def handle(event: Any, rt: Runtime, context: Any = None) -> dict[str, Any]:
    call, ignored = admit(event, rt.settings, routed=FLOW_LOG_EVENTS, kind="flow-log")
    if ignored:
        return ignored
    base: dict[str, Any] = {"event_id": call.event_id, "event_name": call.event_name}
    if call.event_name == "DeleteVpc":
        return _deleted_vpc(call, rt, context, base)
    adapter = flow_log_adapter(rt)
    policy = rt.policy.flow_logs
    tiers = rt.policy.tiers
    model_vpcs: set[str] = set()
    if policy.scope != "all-vpcs":
        model_vpcs = adapter.model_vpcs(tiers.tag_key, tiers.values.get("model", ()))
    deleted: dict[str, list[str]] = {}
    may_create = True
    if call.event_name == "CreateVpc":
        vpc_id = created_vpc_id(call)
        if not vpc_id:
            logger.error(
                "CreateVpc record without responseElements.vpc.vpcId", extra={"event_id": call.event_id}
            )
            raise MalformedEvent("CreateVpc record names no VPC (responseElements.vpc.vpcId)")
        if not adapter.vpc_exists(vpc_id):
            logger.info("vpc gone", extra={"vpc_id": vpc_id})
            return {"status": "resource-gone", **base, "gone": [f"VPC {vpc_id}"]}
        vpcs = [vpc_id]
        why = "It was just created."
    elif call.event_name == "CreateFlowLogs":
        resources, fl_ids = created_flow_logs(call)
        vpcs = [r for r in resources if r.startswith("vpc-")]
        index = flow_log_index(rt)
        if index is not None and len(vpcs) == len(resources) == len(fl_ids):
            # AWS answers the ids in the order of the resources when every one succeeded.
            for fl, vpc in zip(fl_ids, vpcs, strict=True):
                index.remember(fl, vpc, seen=iso_now(), source=f"CreateFlowLogs {call.event_id}")
        vpcs = [v for v in vpcs if adapter.vpc_exists(v)]
        why = ""
        may_create = False  # a person's fix: report the state, never write
        base["created_flow_logs"] = fl_ids
    else:
        fl_ids = deleted_flow_log_ids(call)
        index = flow_log_index(rt)
        known = index.resources_of(fl_ids) if index is not None else {}
        for fl, vpc in known.items():
            deleted.setdefault(vpc, []).append(fl)
        unknown = [fl for fl in fl_ids if fl not in known]
        listed = set(adapter.vpc_ids()) if policy.scope == "all-vpcs" else model_vpcs
        candidates = dict.fromkeys([*deleted, *sorted(listed | set(policy.vpcs))])
        vpcs = [v for v in candidates if v in listed or adapter.vpc_exists(v)]
        why = (
            f"Flow log {', '.join(unknown)} was deleted; CloudTrail names only its id and Perimeter "
            "had not seen it made, so which VPC it covered is unknown."
            if unknown
            else ""
        )
        base["deleted_flow_logs"] = fl_ids
        base["deleted_from"] = {fl: vpc for fl, vpc in known.items()}
    judged = [v for v in vpcs if v in deleted or policy.in_scope(v, model_vpcs)]
    ev = flow_log_evaluation(call, rt, vpcs, why=why, deleted=deleted, judged=judged)
    base["vpcs"] = judged
    return report_evaluation(call, ev, rt, context, base=base, judged_what=judged, may_create=may_create)


def _deleted_vpc(call: ApiCall, rt: Runtime, context: Any, base: dict[str, Any]) -> dict[str, Any]:
    vpc_id = _deleted_vpc_id(call)
    if not vpc_id:
        raise ValueError("DeleteVpc record names no VPC (requestParameters.vpcId)")
    ev = Evaluation()
    base["vpcs"] = [vpc_id]
    if flow_log_adapter(rt).vpc_exists(vpc_id):
        # Deleted and recreated with the same id is impossible; a replayed record of a failed
        # delete is not: judge nothing, resolve nothing.
        return {"status": "compliant", **base, "gone": []}
    for control in VPC_CONTROLS:
        ev.cover(control, vpc_resource(call, vpc_id), f"VPC {vpc_id} was deleted.")
    return report_evaluation(call, ev, rt, context, base=base, gone=[f"VPC {vpc_id}"], may_create=False)
