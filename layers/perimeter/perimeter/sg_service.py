"""The security-group event path: extract, gather, decide, then act and report once.

Reads first (one DescribeSecurityGroups per group, VPC facts cached), decisions pure, and only
a violating event reaches the acting stage, which runs at most once per CloudTrail event id:
write-ahead audit record, revoke by rule id, Security Hub findings, one SNS message. A
compliant event makes no write at all.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from perimeter.changes import GroupChange, extract_group_changes
from perimeter.decide import GroupDecision, decide
from perimeter.events import ApiCall
from perimeter.guard import admit
from perimeter.policy import Policy
from perimeter.publish import publish
from perimeter.report import (
    Outcome,
    audit_id_for,
    build_audit_record,
    build_finding,
    build_notification,
    iso_now,
)
from perimeter.rules import Rule
from perimeter.runtime import Runtime
from perimeter.telemetry import logger


def handle(event: Any, rt: Runtime, context: Any = None) -> dict[str, Any]:
    """Handle one EventBridge event carrying a security-group API call."""
    call, ignored = admit(event, rt.settings)
    if ignored:
        return ignored
    decisions: list[GroupDecision] = []
    missing_groups: list[str] = []
    for change in _resolved(extract_group_changes(call), rt):
        ctx = rt.ec2.group_context(change.group_id, account=call.account, region=call.region)
        if not ctx.exists:
            missing_groups.append(change.group_id)
            continue
        decisions.append(decide(change, ctx, rt.policy, principal_arn=call.actor.arn))
    violating = [d for d in decisions if d.violations]
    if not violating:
        status = "group-deleted" if missing_groups and not decisions else "compliant"
        logger.info("no violation", extra={"status": status, "groups": [d.ctx.group_id for d in decisions]})
        return {
            "status": status,
            "event_id": call.event_id,
            "groups": [d.ctx.group_id for d in decisions] + missing_groups,
        }
    return rt.run_once(call.event_id, lambda: _act_and_report(call, violating, rt), context)


class UnresolvedGroup(RuntimeError):
    """A record names a group by name and no such group exists in the default VPC: failing
    sends the event to the dead-letter queue, where a person sees it (never a silent no-op)."""


def _resolved(changes: list[GroupChange], rt: Runtime) -> list[GroupChange]:
    """Changes as AWS knows them: a group named only by name gets its id; rules named only
    by id (ModifySecurityGroupRules: the record says neither direction nor, for an oversized
    record, content) get AWS's current rule with that id, so the revoke goes to the right
    direction and two rules of identical content stay two rules."""
    out = []
    for change in changes:
        if change.group_name:
            gid = rt.ec2.default_vpc_group_id(change.group_name)
            if gid is None:
                raise UnresolvedGroup(f"no security group named {change.group_name!r} in the default VPC")
            named = tuple(replace(r, group_id=gid) for r in change.rules)
            change = replace(change, group_id=gid, rules=named)
        if any(r.rule_id and r.egress is None for r in change.rules):
            current = rt.ec2.rules_by_id(change.group_id)
            change = replace(
                change,
                rules=tuple(
                    current.get(r.rule_id, r) if r.rule_id and r.egress is None else r for r in change.rules
                ),
            )
        out.append(change)
    return out


def _ensure_ids(rt: Runtime, group_id: str, rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
    """Records from before rule ids existed name rules by content: look the ids up."""
    if all(r.rule_id for r in rules):
        return rules
    ids = rt.ec2.rule_ids(group_id)
    resolved = tuple(r if r.rule_id else r.with_id(ids.get(r.key)) for r in rules)
    return tuple(r for r in resolved if r.rule_id)


def _act_and_report(call: ApiCall, decisions: list[GroupDecision], rt: Runtime) -> dict[str, Any]:
    now = iso_now()
    outcomes: list[Outcome] = []
    for d in decisions:
        gid = d.ctx.group_id
        audit_id = audit_id_for(call.event_id, gid)
        revoked: tuple[Rule, ...] = ()
        gone: tuple[Rule, ...] = ()
        rules = _ensure_ids(rt, gid, d.to_revoke)
        if rules:
            record = build_audit_record(call, d, audit_id, now)
            record["rules"] = [r.to_dict() for r in rules]
            rt.audit.put(record)  # write-ahead: never change what is not recorded
            result = rt.ec2.revoke(gid, rules)
            revoked, gone = tuple(result.revoked), tuple(result.already_gone)
            if gone:
                # Someone else removed these between our read and our revoke: keep the
                # record exact, so a restore puts back only what Perimeter removed.
                record["rules"] = [r.to_dict() for r in revoked]
                record["restore"] = {
                    "ingress": [r.to_permission() for r in revoked if not r.egress],
                    "egress": [r.to_permission() for r in revoked if r.egress],
                }
                rt.audit.put(record)
        earlier: tuple[Rule, ...] = ()
        if d.absent_violating:
            # A retry after a crash between revoke and report: the audit record says what we
            # removed, so the finding still tells the truth.
            prior = rt.audit.get(audit_id)
            if prior:
                removed = {Rule.from_dict(r).key for r in prior.get("rules", [])}
                earlier = tuple(r for r in d.absent_violating if r.key in removed)
        used_audit = bool(revoked or earlier)
        outcomes.append(Outcome(d, revoked, gone, earlier, audit_id if used_audit else None))
    findings = [
        build_finding(call, control_id, vs, o, now=now)
        for o in outcomes
        for control_id, vs in o.decision.by_control().items()
    ]
    return publish(
        call,
        rt,
        findings,
        build_notification(call, outcomes, findings),
        remediated=any(o.removed() for o in outcomes),
        details={"groups": [_group_summary(o, rt.policy) for o in outcomes]},
    )


def _group_summary(o: Outcome, policy: Policy) -> dict[str, Any]:
    return {
        "group_id": o.decision.ctx.group_id,
        "tier": o.decision.ctx.tier(policy),
        "violations": [
            {
                "control": v.control.id,
                "rule": v.rule.describe(),
                "rule_id": v.rule.rule_id,
                "score": v.score.value,
                "severity": v.severity,
                "reasons": list(v.score.reasons),
                "action": "revoked" if o.is_removed(v.rule) else (v.why_not_enforced or "open"),
            }
            for v in o.decision.violations
        ],
        "revoked": [r.rule_id for r in o.revoked],
        "already_gone": [r.rule_id for r in o.already_gone],
        "audit_id": o.audit_id,
    }
