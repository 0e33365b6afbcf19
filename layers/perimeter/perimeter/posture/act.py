"""The acting stage shared by the posture functions (ModelPosture, IamGuard, FlowLogGuard).

Same contract as ``security_groups.service``: the services gather and judge first; only when something
violates does this run, at most once per CloudTrail event id: for each PER-FL-1 issue in
``enforce`` a write-ahead audit record, then CreateFlowLogs (the only change posture controls
make), then every finding in one BatchImportFindings and one SNS message. Everything else is
reported, never changed.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from perimeter.core import once
from perimeter.core.events import ApiCall
from perimeter.core.publish import pending, publish, resume
from perimeter.core.report import call_notification, finding_id, iso_event_time, iso_now
from perimeter.core.runtime import Runtime
from perimeter.core.telemetry import logger
from perimeter.flow_logs.evaluate import FlowLog, FlowLogTarget, create_request, vpc_issue
from perimeter.posture.controls import (
    Clean,
    Evaluation,
    Issue,
    Judged,
    is_active,
    issue_finding,
    issues_notification,
    judge,
    keep_first_seen,
    merge_issues,
    resolved_finding,
    summary_of,
)


def flow_log_target(rt: Runtime | None = None) -> FlowLogTarget:
    """The stack's flow-log group and delivery role (template.yaml passes both). In a member
    account (organization mode) the delivery role is the member stack's, in that account."""
    return FlowLogTarget(
        log_group=os.environ.get("PERIMETER_FLOW_LOG_GROUP") or None,
        role_arn=getattr(rt, "flow_log_role_arn", None)
        or os.environ.get("PERIMETER_FLOW_LOG_ROLE_ARN")
        or None,
    )


def flow_log_adapter(rt: Runtime) -> Any:
    from perimeter.adapters.flowlogs import FlowLogAdapter

    return FlowLogAdapter(rt.client("ec2"), lambda: rt.client("logs"))


def flow_log_index(rt: Runtime) -> Any:
    """The flow-log -> VPC index, or None where the stack gives no table (then DeleteFlowLogs
    can only judge the VPCs the policy names or that hold a model)."""
    table = os.environ.get("PERIMETER_FLOW_LOG_INDEX_TABLE")
    if not table:
        return None
    from perimeter.adapters.flowlogs import FlowLogIndex

    return FlowLogIndex(rt.client("dynamodb"), table)


def flow_log_evaluation(
    call: ApiCall,
    rt: Runtime,
    vpc_ids: Iterable[str],
    *,
    chains: dict[str, tuple[str, ...]] | None = None,
    why: str = "",
    deleted: dict[str, Sequence[str]] | None = None,
    judged: Iterable[str] | None = None,
) -> Evaluation:
    """PER-FL-1 on these VPCs' whole current flow-log state: one DescribeFlowLogs for all.

    ``deleted`` names, per VPC, the flow logs known to have covered it and just deleted;
    ``judged`` (default: all) are the VPCs in the policy's scope: a VPC outside it is never
    reported, and its finding, if any, is resolved. The sweep calls this too."""
    ev = Evaluation()
    ids = [v for v in dict.fromkeys(vpc_ids) if v]
    if not ids or rt.policy.mode("PER-FL-1") == "off":
        return ev
    in_scope = set(ids if judged is None else judged)
    found = flow_log_adapter(rt).flow_logs(ids)
    for vpc_id in ids:
        logs = found.get(vpc_id, [])
        if _unrecorded_own(call, rt, vpc_id, logs):
            logs = []  # judged as the first attempt saw it, so its report is made now
        issue = vpc_issue(
            vpc_id,
            logs,
            account=call.account,
            region=call.region,
            chain=(chains or {}).get(vpc_id, ()),
            why=why,
            deleted=(deleted or {}).get(vpc_id, ()),
        )
        if issue and vpc_id in in_scope:
            ev.issues.append(issue)
        good = [f.flow_log_id for f in logs if f.sufficient]
        reason = (
            f"VPC {vpc_id} has an active flow log of ALL traffic ({', '.join(good)})."
            if good
            else f"VPC {vpc_id} is outside the policy's flow-log scope (flow_logs.scope)."
        )
        ev.cover("PER-FL-1", vpc_resource(call, vpc_id), reason)
    return ev


def _audit_id(call: ApiCall, vpc_id: str) -> str:
    return f"{call.event_id or 'no-event-id'}#{vpc_id}"


def _into_ours(rt: Runtime, logs: Sequence[FlowLog]) -> bool:
    ours = (flow_log_target(rt).log_group, rt.policy.flow_logs.s3_bucket_arn)
    return any(fl.destination and fl.destination in ours for fl in logs)


def _unrecorded_own(call: ApiCall, rt: Runtime, vpc_id: str, logs: Sequence[FlowLog]) -> bool:
    """An earlier attempt at this event created a flow log and died before reporting it (the
    retry would otherwise find the VPC clean and say nothing). Only a flow log into
    Perimeter's own destination costs the audit read.

    Whether the flow log's id made it into the record says nothing of the report: the attempt
    can die after recording it and before the report's outbox is written. So any record of this
    event's creation without a report in the outbox makes the retry judge the VPC as the first
    attempt saw it; the stage's first write (the write-ahead record) carries the event's claim
    (``perimeter.core.once``), so if the first attempt did report (its claim completed) that write
    fails and the retry returns the stored result, changing nothing."""
    if rt.policy.mode("PER-FL-1") != "enforce" or not call.event_id or not _into_ours(rt, logs):
        return False
    record = rt.audit.get(_audit_id(call, vpc_id))
    if not record or record.get("action") != "create-flow-log":
        return False
    # a report in the outbox is resume()'s (unsent) or was sent by it: the VPC is judged as is
    return not record.get("flow_log_ids") or not pending(call, rt)


def vpc_resource(call: ApiCall, vpc_id: str) -> Any:
    from perimeter.core.arns import ec2_arn
    from perimeter.posture.controls import arn_resource

    return arn_resource(
        "AwsEc2Vpc", ec2_arn(call.region, call.account, "vpc", vpc_id), vpc_id, {"VpcId": vpc_id}
    )


def flow_log_issues(
    call: ApiCall,
    rt: Runtime,
    vpc_ids: Iterable[str],
    *,
    chains: dict[str, tuple[str, ...]] | None = None,
    why: str = "",
) -> list[Issue]:
    """PER-FL-1 issues only (callers that do not resolve)."""
    return flow_log_evaluation(call, rt, vpc_ids, chains=chains, why=why).issues


def _create_flow_log(call: ApiCall, j: Judged, rt: Runtime, now: str) -> Judged:
    policy = rt.policy.flow_logs
    target = flow_log_target(rt)
    problem = target.missing(policy)
    if problem:
        # A stack without its flow-log group cannot remediate: say so in the finding rather
        # than fail the whole event (the detection is still true and still reported).
        logger.error("flow log not created", extra={"vpc_id": j.issue.vpc_id, "reason": problem})
        return replace(j, remediation_detail=f"Not created: {problem}.")
    vpc_id = str(j.issue.vpc_id)
    params = create_request(vpc_id, policy, target)
    audit_id = _audit_id(call, vpc_id)
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
    created = list(result.flow_log_ids)
    dest = params.get("LogGroupName") or params.get("LogDestination")
    if not created and result.already_existed:
        # A retry after the create succeeded: the flow log into our destination is ours.
        logs = flow_log_adapter(rt).flow_logs([vpc_id]).get(vpc_id, [])
        created = [fl.flow_log_id for fl in logs if fl.destination == dest]
    if created:
        record["flow_log_ids"] = created
        record["restore"] = {"delete_flow_logs": created}
        rt.audit.put(record)
        index = flow_log_index(rt)
        if index is not None:
            for fl in created:
                index.remember(fl, vpc_id, seen=now, source=f"created by Perimeter ({call.event_id})")
    ids = ", ".join(created) or "already existed"
    detail = (
        f"Perimeter created flow log {ids} on {vpc_id}: ALL traffic to {dest}"
        + (f" (retention {policy.retention_days} days)" if policy.destination != "s3" else "")
        + f"; audit {audit_id}."
    )
    return replace(j, action="created", remediation_detail=detail, audit_id=audit_id)


def remediate(call: ApiCall, judged: Sequence[Judged], rt: Runtime, now: str) -> list[Judged]:
    """What ``enforce`` allows posture controls to change: the missing flow logs, created."""
    done: list[Judged] = []
    for j in judged:
        if j.issue.control_id == "PER-FL-1" and j.mode == "enforce" and j.exemption is None:
            j = _create_flow_log(call, j, rt, now)
        done.append(j)
    return done


def act_and_report(
    call: ApiCall,
    judged: Sequence[Judged],
    rt: Runtime,
    *,
    extra_findings: Sequence[dict[str, Any]] = (),
    also_notify: Sequence[Judged] = (),
    extra: dict[str, Any] | None = None,
    resolved: Sequence[tuple[dict[str, Any], str]] = (),
    existing: dict[str, dict[str, Any]] | None = None,
    may_create: bool = True,
) -> dict[str, Any]:
    """Remediate what ``enforce`` allows (flow logs only), then report everything once.
    ``extra_findings`` were built elsewhere (the core's security-group findings); ``also_notify``
    tells the SNS message and the summary about them. ``resolved`` are stored active findings
    whose resource is now clean or gone, each with why; ``existing`` the stored findings of the
    issues (their first-seen and creation times are kept)."""
    now = iso_now()
    done = remediate(call, judged, rt, now) if may_create else list(judged)
    if existing is None:
        existing = rt.securityhub.existing([_id_of(call, j.issue) for j in done])
    findings = [
        keep_first_seen(issue_finding(call, j, now=now), existing.get(_id_of(call, j.issue))) for j in done
    ]
    event_time = iso_event_time(call.event_time, now)
    closing = [resolved_finding(f, call, why=why, now=now, event_time=event_time) for f, why in resolved]
    findings += closing + list(extra_findings)
    told = [*done, *also_notify]
    if told:
        note = issues_notification(call, told, findings)
    elif closing:
        note = _resolved_notification(call, resolved, findings)
    else:
        note = None
    return publish(
        call,
        rt,
        findings,
        note,
        remediated=any(j.action == "created" for j in done),
        outbox=any(j.action == "created" for j in done),
        details={
            "issues": [summary_of(j) for j in told],
            "resolved": [f["Id"] for f in closing],
            **(extra or {}),
        },
    )


def _id_of(call: ApiCall, issue: Issue) -> str:
    return finding_id(issue.control_id, call.account, call.region, issue.resource.short_id)


def _resolved_notification(
    call: ApiCall, resolved: Sequence[tuple[dict[str, Any], str]], findings: Sequence[dict[str, Any]]
) -> Any:
    first = resolved[0][0]
    control = str(first.get("GeneratorId", ""))
    # the resource, as the finding id names it (perimeter/<control>/<account>/<region>/<resource>):
    # a finding's title is too long for an SNS subject and would be cut
    fid = str(first.get("Id", ""))
    what = fid.split("/", 4)[4] if fid.startswith("perimeter/") and fid.count("/") >= 4 else ""
    what = str((first.get("ProductFields") or {}).get("perimeter/resource") or what or first.get("Title", ""))
    subject = f"[Perimeter] RESOLVED {control}: {what}"
    if len(resolved) > 1:
        subject += f" (+{len(resolved) - 1} more)"
    return call_notification(
        call,
        subject=subject,
        lines=[f"RESOLVED {f.get('GeneratorId')} {f.get('Title')}: {why}" for f, why in resolved],
        details={"resolved": [{"finding": f["Id"], "why": why} for f, why in resolved]},
        attributes={"control": control, "severity": "INFORMATIONAL", "action": "resolved"},
        findings=findings,
    )


def report_evaluation(
    call: ApiCall,
    ev: Evaluation,
    rt: Runtime,
    context: Any,
    *,
    base: dict[str, Any],
    gone: Sequence[str] = (),
    judged_what: Sequence[str] = (),
    principal_arn: str | None = None,
    may_create: bool = True,
) -> dict[str, Any]:
    """Tell Security Hub the resources' state: a finding per (control, resource) with every
    problem while one exists; the active finding of every clean (or deleted) pair resolved.
    Reads the stored findings once (GetFindings by id); writes only when something changes,
    at most once per CloudTrail event id."""
    judged, resolved, existing = plan_report(call, ev, rt, principal_arn=principal_arn)
    if not judged and not resolved:
        resumed = resume(call, rt) if unreported_flow_log(call, ev, rt, existing) else None
        if resumed is not None:
            return resumed
        status = "resource-gone" if gone and not judged_what else "compliant"
        logger.info(
            "no violation", extra={"status": status, "resources": list(judged_what), "gone": list(gone)}
        )
        return {"status": status, **base, "gone": list(gone)}
    return rt.run_once(
        call.event_id,
        lambda: act_and_report(
            call, judged, rt, extra=base, resolved=resolved, existing=existing, may_create=may_create
        ),
        context,
    )


def plan_report(
    call: ApiCall,
    ev: Evaluation,
    rt: Runtime,
    *,
    principal_arn: str | None = None,
    extra_ids: Sequence[str] = (),
) -> tuple[list[Judged], list[tuple[dict[str, Any], str]], dict[str, dict[str, Any]]]:
    """(issues judged one per (control, resource), stored active findings to resolve with why,
    every stored finding read) for one evaluation: one GetFindings pass."""
    issues = merge_issues(ev.issues)
    judged = judge(issues, rt.policy, principal_arn=principal_arn or call.actor.arn)
    clean = ev.clean()
    ids = [_id_of(call, j.issue) for j in judged] + [_clean_id(call, c) for c in clean] + list(extra_ids)
    existing = rt.securityhub.existing(ids) if ids else {}
    resolved = [
        (existing[_clean_id(call, c)], c.why) for c in clean if is_active(existing.get(_clean_id(call, c)))
    ]
    return judged, resolved, existing


def unreported_flow_log(
    call: ApiCall, ev: Evaluation, rt: Runtime, existing: Mapping[str, dict[str, Any]]
) -> bool:
    """A clean flow-log pair never reported, or reported by this very event: an earlier attempt
    at this event may have made the flow log and died before its report went out, or sent part
    of it (the finding imported, the message not) and failed (the rest is kept in the outbox
    until sent). Another event's finding costs nothing: no outbox read."""
    if rt.policy.mode("PER-FL-1") != "enforce":
        return False

    def by_this_event(stored: Mapping[str, Any] | None) -> bool:
        if stored is None:
            return True
        fields = stored.get("ProductFields") or {}
        return bool(call.event_id) and fields.get("perimeter/event_id") == call.event_id

    return any(
        c.control_id == "PER-FL-1" and by_this_event(existing.get(_clean_id(call, c))) for c in ev.clean()
    )


def resume_in_stage(call: ApiCall, rt: Runtime) -> dict[str, Any] | None:
    """Inside the event's once-only stage: send the report an earlier attempt left in the
    outbox, claiming the event first (so a later duplicate gets this result, not a second
    report); None when the outbox holds no unsent report."""
    if not pending(call, rt):
        return None
    claim = once.current()
    if claim is not None and not claim.claimed:
        claim.take()
    return resume(call, rt)


def _clean_id(call: ApiCall, c: Clean) -> str:
    return finding_id(c.control_id, call.account, call.region, c.resource.short_id)
