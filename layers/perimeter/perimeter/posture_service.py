"""The acting stage shared by the posture functions (ModelPosture, IamGuard, FlowLogGuard).

Same contract as ``sg_service``: the services gather and judge first; only when something
violates does this run, at most once per CloudTrail event id: for each PER-FL-1 issue in
``enforce`` a write-ahead audit record, then CreateFlowLogs (the only change posture controls
make), then every finding in one BatchImportFindings and one SNS message. Everything else is
reported, never changed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from perimeter.events import ApiCall
from perimeter.flowlog_eval import FlowLogTarget, create_request, vpc_issue
from perimeter.posture import Issue, Judged, issue_finding, issues_notification, summary_of
from perimeter.publish import publish
from perimeter.report import iso_now
from perimeter.runtime import Runtime
from perimeter.telemetry import logger


def flow_log_target() -> FlowLogTarget:
    """The stack's flow-log group and delivery role (template.yaml passes both)."""
    return FlowLogTarget(
        log_group=os.environ.get("PERIMETER_FLOW_LOG_GROUP") or None,
        role_arn=os.environ.get("PERIMETER_FLOW_LOG_ROLE_ARN") or None,
    )


def flow_log_adapter(rt: Runtime) -> Any:
    from perimeter.adapters.flowlogs import FlowLogAdapter

    return FlowLogAdapter(rt.client("ec2"), lambda: rt.client("logs"))


def flow_log_issues(
    call: ApiCall,
    rt: Runtime,
    vpc_ids: Iterable[str],
    *,
    chains: dict[str, tuple[str, ...]] | None = None,
    why: str = "",
    deleted: Sequence[str] = (),
) -> list[Issue]:
    """PER-FL-1 for these VPCs: one DescribeFlowLogs for all of them."""
    ids = [v for v in dict.fromkeys(vpc_ids) if v]
    if not ids or rt.policy.mode("PER-FL-1") == "off":
        return []
    found = flow_log_adapter(rt).flow_logs(ids)
    out = []
    for vpc_id in ids:
        issue = vpc_issue(
            vpc_id,
            found.get(vpc_id, []),
            account=call.account,
            region=call.region,
            chain=(chains or {}).get(vpc_id, ()),
            why=why,
            deleted=deleted,
        )
        if issue:
            out.append(issue)
    return out


def _create_flow_log(call: ApiCall, j: Judged, rt: Runtime, now: str) -> Judged:
    policy = rt.policy.flow_logs
    target = flow_log_target()
    problem = target.missing(policy)
    if problem:
        # A stack without its flow-log group cannot remediate: say so in the finding rather
        # than fail the whole event (the detection is still true and still reported).
        logger.error("flow log not created", extra={"vpc_id": j.issue.vpc_id, "reason": problem})
        return replace(j, remediation_detail=f"Not created: {problem}.")
    vpc_id = str(j.issue.vpc_id)
    params = create_request(vpc_id, policy, target)
    audit_id = f"{call.event_id or 'no-event-id'}#{vpc_id}"
    record: dict[str, Any] = {
        "audit_id": audit_id,
        "time": now,
        "action": "create-flow-log",
        "event_id": call.event_id,
        "event_name": call.event_name,
        "actor": call.actor.display,
        "account": call.account,
        "region": call.region,
        "vpc_id": vpc_id,
        "group_id": "",
        "controls": ["PER-FL-1"],
        "request": params,
        "flow_log_ids": [],
        "restore": {"delete_flow_logs": []},
    }
    rt.audit.put(record)  # write-ahead: the record exists before the flow log does
    result = flow_log_adapter(rt).create(params, retention_days=policy.retention_days)
    if result.flow_log_ids:
        record["flow_log_ids"] = list(result.flow_log_ids)
        record["restore"] = {"delete_flow_logs": list(result.flow_log_ids)}
        rt.audit.put(record)
    dest = params.get("LogGroupName") or params.get("LogDestination")
    ids = ", ".join(result.flow_log_ids) or "already existed"
    detail = (
        f"Perimeter created flow log {ids} on {vpc_id}: ALL traffic to {dest}"
        + (f" (retention {policy.retention_days} days)" if policy.destination != "s3" else "")
        + f"; audit {audit_id}."
    )
    return replace(j, action="created", remediation_detail=detail)


def act_and_report(
    call: ApiCall,
    judged: Sequence[Judged],
    rt: Runtime,
    *,
    extra_findings: Sequence[dict[str, Any]] = (),
    also_notify: Sequence[Judged] = (),
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Remediate what ``enforce`` allows (flow logs only), then report everything once.
    ``extra_findings`` were built elsewhere (the core's security-group findings); ``also_notify``
    tells the SNS message and the summary about them."""
    now = iso_now()
    done: list[Judged] = []
    for j in judged:
        if j.issue.control_id == "PER-FL-1" and j.mode == "enforce" and j.exemption is None:
            j = _create_flow_log(call, j, rt, now)
        done.append(j)
    findings = [issue_finding(call, j, now=now) for j in done] + list(extra_findings)
    told = [*done, *also_notify]
    return publish(
        call,
        rt,
        findings,
        issues_notification(call, told, findings) if told else None,
        remediated=any(j.action == "created" for j in done),
        details={"issues": [summary_of(j) for j in told], **(extra or {})},
    )
