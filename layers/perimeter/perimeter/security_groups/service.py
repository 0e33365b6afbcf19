"""The security-group event path: pick the groups, judge each one's whole state, act, report.

The event only decides *which* groups to look at (``security_groups.subjects``); each is read with one
DescribeSecurityGroups (VPC facts and prefix-list entries cached per container) and judged
whole by ``security_groups.evaluate.evaluate_group``, the evaluation the sweep uses too. Then:

- nothing violates and the call cannot have fixed anything (an Authorize that added nothing
  offending): no write at all;
- nothing violates but the call may have fixed something (a person's Revoke, a deleted
  group, a ModifySecurityGroupRules or ModifyManagedPrefixList): the findings that exist for
  the group go PASSED/ARCHIVED — reads and Security Hub only, never an EC2 write;
- something violates: once per CloudTrail event id, write-ahead audit record, revoke (only
  for calls that may act: never for Revoke*/DeleteSecurityGroup) every current rule that is
  offending, present, not exempt and at or above the threshold, by rule id; then one finding
  per (control, group): FAILED/ACTIVE listing every violating rule still there, PASSED once
  none is; one SNS message.

Findings keep ``CreatedAt``/``FirstObservedAt`` through the findings ledger (one UpdateItem
per group reported; ``adapters/ledger.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from perimeter.core import once
from perimeter.core.controls import REGISTRY, SG_CONTROLS
from perimeter.core.events import ApiCall
from perimeter.core.guard import admit
from perimeter.core.publish import publish
from perimeter.core.report import (
    Notification,
    Outcome,
    audit_id_for,
    build_audit_record,
    build_finding,
    build_notification,
    build_passed_finding,
    call_notification,
    iso_now,
)
from perimeter.core.rules import Rule
from perimeter.core.runtime import Runtime
from perimeter.core.telemetry import logger
from perimeter.policy import Policy
from perimeter.security_groups.changes import GroupChange
from perimeter.security_groups.context import GroupContext
from perimeter.security_groups.evaluate import GroupDecision, decide, evaluate_group
from perimeter.security_groups.subjects import Subjects, subjects_of

if TYPE_CHECKING:
    from perimeter.adapters.ec2 import RevokeResult


def handle(event: Any, rt: Runtime, context: Any = None) -> dict[str, Any]:
    """Handle one EventBridge event carrying a security-group or prefix-list API call."""
    call, ignored = admit(event, rt.settings)
    if ignored:
        return ignored
    subjects = subjects_of(call)
    if subjects.reason:
        logger.info("nothing to judge", extra={"reason": subjects.reason})
        return {"status": "no-op", "reason": subjects.reason, "event_id": call.event_id}
    # The undo's exemptions change only whether a violation is exempt (never whether there is
    # one): under a claim they are checked absent inside it (``_stage``), not read first.
    decisions, missing, unread = gather(call, subjects, rt, read_exemptions=rt.once is None)
    # A violation of a rule the event added but that is gone again still goes through the
    # once-only stage: a duplicate delivery returns the first run's result, a retry after a
    # crash reports what the audit record says we removed.
    violating = [d for d in decisions if d.violations]
    # A malformed perimeter:exempt tag (PER-EXM-1, judged from the tags the read already has)
    # is reported even when the call itself is harmless; a tag fixed since is resolved by the
    # next call that may fix something, a violation, or the sweep (tag edits are not routed).
    tag_failing = any(_tag_failing(d, rt.policy) for d in decisions)
    if not violating and not subjects.may_fix and not tag_failing:
        status = "group-deleted" if missing and not decisions else "compliant"
        logger.info("no violation", extra={"status": status, "groups": [d.ctx.group_id for d in decisions]})
        return {
            "status": status,
            "event_id": call.event_id,
            "groups": [d.ctx.group_id for d in decisions] + missing,
        }
    if not violating:
        return _resolve(call, decisions, missing, rt)
    return rt.run_once(call.event_id, lambda: _stage(call, subjects, decisions, missing, unread, rt), context)


def gather(
    call: ApiCall, subjects: Subjects, rt: Runtime, *, read_exemptions: bool = True
) -> tuple[list[GroupDecision], list[str], dict[str, GroupChange]]:
    """Read and judge every group the event points at: ``(decisions, missing group ids,
    unread)``. With ``read_exemptions`` the undo's exemptions of the groups the event names are
    read beside DescribeSecurityGroups, never before it; without, those groups are judged with
    none and returned in ``unread`` (group id: its change), for ``_stage`` to check or read."""
    decisions: dict[str, GroupDecision] = {}
    missing: list[str] = list(subjects.deleted)
    unread: dict[str, GroupChange] = {}
    principal = call.actor.arn
    store = rt.exemptions
    pending = (
        rt.pool.submit(store.for_resources, [c.group_id for c in subjects.changes if c.group_id])
        if read_exemptions and store is not None and subjects.changes
        else None
    )
    exempt: dict[str, tuple[Any, ...]] = {}
    for change in _resolved(list(subjects.changes), rt):
        if change.group_id in decisions:
            continue
        ctx = rt.ec2.group_context(change.group_id, account=call.account, region=call.region)
        if not ctx.exists:
            missing.append(change.group_id)
            continue
        if pending is not None:
            exempt = exempt or pending.result()
            extra = exempt.get(ctx.group_id)
            if extra is None:  # a group named by name: its id was not known before the read
                extra = exempt[ctx.group_id] = store.for_resource(ctx.group_id)
            ctx = replace(ctx, exemptions=extra)
        elif store is not None:
            unread[ctx.group_id] = change
        decisions[ctx.group_id] = decide(change, ctx, rt.policy, principal_arn=principal)
    if pending is not None and not pending.done():
        pending.result()
    if subjects.prefix_list_id:
        for g in rt.ec2.groups_naming_prefix_list(subjects.prefix_list_id):
            ctx = rt.ec2.context_of(g, account=call.account, region=call.region)
            if store is not None:
                ctx = replace(ctx, exemptions=store.for_resource(ctx.group_id))
            if ctx.group_id not in decisions:
                decisions[ctx.group_id] = evaluate_group(ctx, rt.policy)
    return list(decisions.values()), list(dict.fromkeys(missing)), unread


#: The ConditionChecks one claim may carry: a transaction holds at most 100 items, and the
#: claim and the first write-ahead audit record are two of them.
MAX_CHECKS = 98


def _stage(
    call: ApiCall,
    subjects: Subjects,
    decisions: list[GroupDecision],
    missing: Sequence[str],
    unread: Mapping[str, GroupChange],
    rt: Runtime,
) -> dict[str, Any]:
    """The once-only stage, with the undo's exemptions of the ``unread`` groups settled.

    The usual answer is that none exists, so none is read: the claim's write (the transaction
    with the write-ahead audit record, or the detect-only claim) carries one ``ConditionCheck``
    per key an undo item that could exempt a present, not otherwise exempt violation would have
    (the rule's own and its control's ``*``), each holding while no such item exists. One
    fails (an item exists, in force or expired): nothing was written, so the exemptions are
    read (one Query per group), the groups judged again with them and the stage run again,
    its claim without checks. Too many keys for one transaction: read before the stage."""
    store = rt.exemptions
    claim = once.current()
    if unread and store is not None:
        keys = _undo_keys(d for d in decisions if d.ctx.group_id in unread)
        if claim is not None and not claim.claimed and len(keys) <= MAX_CHECKS:
            claim.checks = tuple(store.absent(keys))
        elif keys:
            decisions = _with_exemptions(call, decisions, unread, rt)
    try:
        return _act_and_report(call, subjects, decisions, missing, rt)
    except once.CheckFailed:
        logger.info("an undo exemption item exists: reading the exemptions", extra={"groups": list(unread)})
        decisions = _with_exemptions(call, decisions, unread, rt)
        return _act_and_report(call, subjects, decisions, missing, rt)


def _undo_keys(decisions: Iterable[GroupDecision]) -> list[tuple[str, str]]:
    """The undo items' keys that could change these decisions (deduplicated, in order)."""
    from perimeter.core.exemptions import undo_keys

    keys: dict[tuple[str, str], None] = {}
    for d in decisions:
        for v in d.violations:
            if v.present and v.exemption is None:
                keys.update(dict.fromkeys(undo_keys(d.ctx.group_id, v.control.id, v.rule.key)))
    return list(keys)


def _with_exemptions(
    call: ApiCall, decisions: list[GroupDecision], unread: Mapping[str, GroupChange], rt: Runtime
) -> list[GroupDecision]:
    """The ``unread`` groups judged again with their undo exemptions, read now."""
    found = rt.exemptions.for_resources(d.ctx.group_id for d in decisions if d.ctx.group_id in unread)
    principal = call.actor.arn
    return [
        decide(unread[gid], replace(d.ctx, exemptions=found[gid]), rt.policy, principal_arn=principal)
        if (gid := d.ctx.group_id) in unread
        else d
        for d in decisions
    ]


def _gone_ctx(call: ApiCall, group_id: str) -> GroupContext:
    return GroupContext(group_id=group_id, account=call.account, region=call.region, exists=False)


def _active_controls(policy: Policy) -> tuple[Any, ...]:
    return tuple(c for c in SG_CONTROLS if policy.mode(c.id) != "off")


def _passed(
    call: ApiCall, rt: Runtime, ctx: GroupContext, passing: Iterable[str], now: str, *, deleted: bool
) -> list[dict[str, Any]]:
    """PASSED findings for the controls that pass on the group and have a finding to resolve
    (every passing control when no ledger is configured)."""
    from perimeter.posture.controls import (
        EXM_1,
        exempt_tag_issues,
        exempt_tag_passed,
        exempt_tag_split,
        issue_finding,
        judge,
    )

    passing = list(passing)
    failing: list[str] = []
    if not deleted:
        # PER-EXM-1 rides on the same ledger observation: the tag, judged again here
        failing, tag_passing = exempt_tag_split(ctx, rt.policy)
        passing += tag_passing
    if not passing and not failing:
        return []
    seen = rt.ledger.observe(ctx.arn, failing, passing, now) if rt.ledger is not None else None
    out = [
        exempt_tag_passed(call, ctx, now=now, seen=seen[c] if seen else None, deleted=deleted)
        if c == EXM_1.id
        else build_passed_finding(
            call, REGISTRY[c], ctx, now=now, seen=seen[c] if seen else None, deleted=deleted
        )
        for c in passing
        if seen is None or seen[c].existed
    ]
    for j in judge(exempt_tag_issues([ctx]) if failing else [], rt.policy, principal_arn=None):
        out.append(issue_finding(call, j, now=now, seen=seen.get(j.issue.control_id) if seen else None))
    return out


def _tag_failing(d: GroupDecision, policy: Policy) -> bool:
    from perimeter.posture.controls import exempt_tag_split

    return bool(exempt_tag_split(d.ctx, policy)[0])


def _resolve(
    call: ApiCall, decisions: Sequence[GroupDecision], missing: Sequence[str], rt: Runtime
) -> dict[str, Any]:
    """Nothing violates after a call that may have fixed something: resolve what exists (and
    report a malformed ``perimeter:exempt`` tag, PER-EXM-1, which no rule fixes)."""
    now = iso_now()
    findings: list[dict[str, Any]] = []
    for d in decisions:
        findings += _passed(call, rt, d.ctx, d.passing, now, deleted=False)
    controls = [c.id for c in _active_controls(rt.policy)]
    if rt.policy.mode("PER-EXM-1") != "off":
        controls.append("PER-EXM-1")  # a deleted group's malformed tag is gone with it
    for gid in missing:
        findings += _passed(call, rt, _gone_ctx(call, gid), controls, now, deleted=True)
    groups = [d.ctx.group_id for d in decisions] + list(missing)
    if not findings:
        logger.info("no violation, nothing to resolve", extra={"groups": groups})
        return {"status": "compliant", "event_id": call.event_id, "groups": groups}
    failed = any(f["Compliance"]["Status"] == "FAILED" for f in findings)
    status = "reported" if failed else "resolved"
    return publish(
        call,
        rt,
        findings,
        _resolved_note(call, findings),
        remediated=False,
        details={"status": status, "groups": groups},
    ) | {"status": status}


def _resolved_note(call: ApiCall, findings: Sequence[dict[str, Any]]) -> Notification:
    def verb(f: Mapping[str, Any]) -> str:
        return "RESOLVED" if f["Compliance"]["Status"] == "PASSED" else "FAILED"

    lines = [f"{verb(f):<8} {f['GeneratorId']:<9} {f['Resources'][0]['Id']}" for f in findings]
    # a failing finding (a malformed perimeter:exempt tag) leads the subject when there is one
    first = sorted(findings, key=lambda f: verb(f) != "FAILED")[0]
    where = first["Resources"][0]["Id"].rsplit("/", 1)[-1]
    resolved = [f["Id"] for f in findings if verb(f) == "RESOLVED"]
    failing = [f["Id"] for f in findings if verb(f) == "FAILED"]
    return call_notification(
        call,
        subject=f"[Perimeter] {verb(first)} {first['GeneratorId']} on {where}",
        lines=lines,
        details={"resolved": resolved, **({"failing": failing} if failing else {})},
        attributes={
            "control": first["GeneratorId"],
            "severity": first["Severity"]["Label"],
            "action": "resolved" if verb(first) == "RESOLVED" else "detected",
        },
        findings=findings,
    )


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


def _act_and_report(
    call: ApiCall,
    subjects: Subjects,
    decisions: list[GroupDecision],
    missing: Sequence[str],
    rt: Runtime,
) -> dict[str, Any]:
    now = iso_now()
    outcomes: list[Outcome] = []
    observed: dict[str, _Observed | None] = {}
    vanished: list[str] = []
    for d in decisions:
        gid = d.ctx.group_id
        audit_id = audit_id_for(call.event_id, gid)
        revoked: tuple[Rule, ...] = ()
        gone: tuple[Rule, ...] = ()
        rules = _ensure_ids(rt, gid, d.to_revoke) if subjects.may_act else ()
        if rules:
            record = build_audit_record(call, d, audit_id, now)
            record["rules"] = [r.to_dict() for r in rules]
            record["restore"] = {
                "ingress": [r.to_permission() for r in rules if not r.egress],
                "egress": [r.to_permission() for r in rules if r.egress],
            }
            rt.audit.put(record)  # write-ahead: never change what is not recorded
            result, observed[gid] = _revoke_observing(rt, d, rules, now)
            revoked, gone = tuple(result.revoked), tuple(result.already_gone)
            if gone:
                # Someone else removed these between our read and our revoke: keep the
                # record exact, so a restore puts back only what Perimeter removed.
                record["rules"] = [r.to_dict() for r in revoked]
                record["restore"] = {
                    "ingress": [r.to_permission() for r in revoked if not r.egress],
                    "egress": [r.to_permission() for r in revoked if r.egress],
                }
                if result.group_gone:
                    record["outcome"] = "group-deleted"
                rt.audit.put(record)
            if result.group_gone and not revoked:
                # Deleted between our read and our revoke: nothing of it is left to judge, so
                # its findings tell what a deleted group's do (resolved, where one exists).
                vanished.append(gid)
                continue
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
    claim = once.current()
    if claim is not None and not claim.claimed:
        # Nothing was written ahead (detect only, or a retry): claim the event before the ledger
        # write, so a duplicate delivery stops here having written nothing.
        claim.take()
    findings = _findings(call, outcomes, rt, now, observed)
    controls = [c.id for c in _active_controls(rt.policy)]
    for gid in [*(missing if subjects.may_fix else ()), *vanished]:
        findings += _passed(call, rt, _gone_ctx(call, gid), controls, now, deleted=True)
    if outcomes:
        note: Notification | None = build_notification(call, outcomes, findings)
    else:
        note = _resolved_note(call, findings) if findings else None
    details: dict[str, Any] = {"groups": [_group_summary(o, rt.policy) for o in outcomes]}
    if vanished:
        details["deleted_before_revoke"] = vanished
    return publish(
        call,
        rt,
        findings,
        note,
        remediated=any(o.removed() for o in outcomes),
        details=details,
    )


@dataclass(frozen=True, slots=True)
class _Observed:
    """A ledger observation written beside the revoke: the controls it recorded as failing and
    passing, and the ledger item as it was before."""

    failing: frozenset[str]
    passing: frozenset[str]
    old: Mapping[str, str]


def _split(d: GroupDecision, removed: frozenset[Any], policy: Policy) -> tuple[list[str], list[str]]:
    """(failing, passing) controls of a decision once the rules with content keys ``removed``
    are gone: a control fails while a present violation of it is left (``report.remaining``).
    PER-EXM-1 (the group's ``perimeter:exempt`` tag) is part of the same observation."""
    from perimeter.posture.controls import exempt_tag_split

    failing = [
        c for c, vs in d.by_control().items() if any(v.present and v.rule.key not in removed for v in vs)
    ]
    passing = [c.id for c in d.controls if c.id not in failing]
    tag_failing, tag_passing = exempt_tag_split(d.ctx, policy)
    return failing + tag_failing, passing + tag_passing


def _revoke_observing(
    rt: Runtime, d: GroupDecision, rules: tuple[Rule, ...], now: str
) -> tuple[RevokeResult, _Observed | None]:
    """Revoke ``rules`` and, beside it (one round trip, not two), record in the findings ledger
    the state the group is in once they are gone. A revoke settles every rule it is given
    (revoked, or already gone) or raises, so that state is known before it returns. When the
    revoke fails, the ledger is put back as it was (the retry must find the first times), and
    the invocation fails as before."""
    ledger = rt.ledger
    gid = d.ctx.group_id
    if ledger is None:
        return rt.ec2.revoke(gid, rules), None
    failing, passing = _split(d, frozenset(r.key for r in rules), rt.policy)
    olds: list[dict[str, str]] = []

    def observe() -> None:
        olds.append(ledger.record(d.ctx.arn, failing, passing, now))

    try:
        result, _ = rt.in_parallel(lambda: rt.ec2.revoke(gid, rules), observe)
    except Exception as exc:
        if olds:
            try:
                ledger.restore(d.ctx.arn, olds[0], failing, passing)
            except Exception as again:  # noqa: BLE001 - the first failure is the one to raise
                exc.add_note(f"and putting the findings ledger back failed: {again!r}")
        raise
    return result, _Observed(frozenset(failing), frozenset(passing), olds[0])


def _findings(
    call: ApiCall,
    outcomes: Sequence[Outcome],
    rt: Runtime,
    now: str,
    observed: Mapping[str, _Observed | None] | None = None,
) -> list[dict[str, Any]]:
    """One finding per (control, group) the decision judged: its violations' finding, and a
    PASSED one for each passing control that has a finding to resolve."""
    out: list[dict[str, Any]] = []
    for o in outcomes:
        d = o.decision
        by_control = d.by_control()
        failing, passing = _split(d, o.removed_keys | o.gone_keys, rt.policy)
        seen = _seen(rt, d, failing, passing, now, (observed or {}).get(d.ctx.group_id))
        for c in d.controls:
            vs = by_control.get(c.id)
            if vs:
                out.append(build_finding(call, c.id, vs, o, now=now, seen=seen.get(c.id)))
            elif c.id in seen and seen[c.id].existed:
                out.append(build_passed_finding(call, c, d.ctx, now=now, seen=seen[c.id]))
        # A malformed perimeter:exempt tag protected nothing here: say so (PER-EXM-1), with the
        # ledger's first times; a tag fixed since resolves its finding.
        from perimeter.posture.controls import (
            EXM_1,
            exempt_tag_issues,
            exempt_tag_passed,
            issue_finding,
            judge,
        )

        if EXM_1.id in failing:
            for j in judge(exempt_tag_issues([d.ctx]), rt.policy, principal_arn=None):
                out.append(issue_finding(call, j, now=now, seen=seen.get(EXM_1.id)))
        elif EXM_1.id in passing and EXM_1.id in seen and seen[EXM_1.id].existed:
            out.append(exempt_tag_passed(call, d.ctx, now=now, seen=seen[EXM_1.id]))
    return out


def _seen(
    rt: Runtime, d: GroupDecision, failing: list[str], passing: list[str], now: str, obs: _Observed | None
) -> Mapping[str, Any]:
    """The ledger's first times for the group's findings: from the observation written beside
    the revoke when it recorded this state (always, unless the revoke surprised us), else by
    observing now."""
    ledger = rt.ledger
    if ledger is None:
        return {}
    if obs is None:
        return ledger.observe(d.ctx.arn, failing, passing, now)  # type: ignore[no-any-return]
    if (obs.failing, obs.passing) != (frozenset(failing), frozenset(passing)):
        ledger.record(d.ctx.arn, failing, passing, now)
    return ledger.seen_from(obs.old, failing, passing, now)  # type: ignore[no-any-return]


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
                "action": "revoked"
                if o.is_removed(v.rule)
                else "already gone"
                if v.rule.key in o.gone_keys
                else (v.why_not_enforced or "open"),
            }
            for v in o.decision.violations
        ],
        "revoked": [r.rule_id for r in o.revoked],
        "already_gone": [r.rule_id for r in o.already_gone],
        "audit_id": o.audit_id,
    }
