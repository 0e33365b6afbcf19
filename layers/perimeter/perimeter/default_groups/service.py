"""The default-SG and tier event path: read what the event points at, plan, then migrate once.

Same shape as ``security_groups.service``: parse -> guard -> extract -> a few reads -> pure plan -> only if
violating, ``run_once`` around the acting stage (write-ahead audit, migration, findings, one
SNS message). A compliant event writes nothing.

The migration for one VPC, in order, each step safe to repeat (a retry after a crash resumes
from what AWS now holds, and the audit record of the first attempt is merged, never replaced):

1. audit record: every dependant's groups before, the default SG's rules (write-ahead);
2. find or create the interim group (name = digest of its rules) and give it its rules;
3. per ENI: add the interim group, then remove the default group (two calls; the ENI holds
   at least one group at every step);
4. revoke the default group's rules, by rule id;
5. findings and notification written to the outbox, then the audit record completed (a crash
   before it leaves the record started: the retry resumes and rebuilds the report; after it,
   the retry finds the report in the outbox), then sent.

EC2 calls per event: a compliant ENI event 1 (DescribeNetworkInterfaces; +1
DescribeSecurityGroups when PER-TIER-1 is on); an Authorize on a non-default group 1. A
violating event reads 4 more (default SG, its rules, its dependants, route tables — the last
cached per container), 2 more before it may move dependants (other groups whose rules name
the default SG, ingress and egress: moving would cut that traffic, so any such rule blocks
the move), and writes at most 1 find + 1 create + 2 authorize + 2N modify + 2 revoke
for N dependants.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from perimeter.adapters.ec2_network import Ec2NetworkAdapter, GroupInfo
from perimeter.core.arns import ec2_arn
from perimeter.core.events import ApiCall
from perimeter.core.guard import admit
from perimeter.core.publish import publish, resume
from perimeter.core.report import (
    SEVERITY_ORDER,
    FindingResource,
    Notification,
    call_notification,
    group_resource,
    iso_now,
    make_finding,
    worst,
)
from perimeter.core.rules import Rule
from perimeter.core.runtime import Runtime
from perimeter.core.scoring import score_rule
from perimeter.core.telemetry import logger
from perimeter.default_groups.plan import (
    DSG1,
    DSG2,
    INTERIM_PREFIX,
    MANAGED_TAG,
    QUARANTINE_NAME,
    SELF,
    SG5,
    TIER1,
    Eni,
    MigrationPlan,
    Subjects,
    TierFinding,
    extract_subjects,
    fix_for_managed,
    materialize,
    plan_migration,
    tier_findings,
)
from perimeter.security_groups import launch_template
from perimeter.security_groups.context import GroupContext

AUDIT_ACTION = "default-sg-migration"


@dataclass
class Migration:
    """What acting did for one VPC."""

    plan: MigrationPlan
    audit_id: str | None = None
    interim_id: str | None = None
    quarantine_id: str | None = None
    moved: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    revoked: list[Rule] = field(default_factory=list)
    #: ENIs an earlier attempt at the same event moved (a retry reports them too)
    earlier: list[Eni] = field(default_factory=list)
    #: the audit record, until it is marked complete (``finish``)
    record: dict[str, Any] | None = None

    def finish(self, rt: Runtime) -> None:
        """Mark the audit record complete: the migration is done AND its report is safe (in
        the outbox, or sent). A retry treats a record not complete as a migration to resume,
        which rebuilds the report; a complete one leaves the report to the outbox (``resume``)."""
        if self.record is None or self.record.get("status") == "complete":
            return
        self.record["status"] = "complete"
        self.record["updated"] = iso_now()
        rt.audit.put(self.record)

    @property
    def emptied(self) -> bool:
        return bool(self.plan.revoke) and len(self.revoked) >= len(self.plan.revoke)


@dataclass
class Assessment:
    """Everything the reads found that a finding must report."""

    plans: list[MigrationPlan] = field(default_factory=list)
    tiers: list[TierFinding] = field(default_factory=list)
    sg5: list[tuple[GroupContext, list[Rule]]] = field(default_factory=list)
    managed: list[tuple[Subjects, list[str]]] = field(default_factory=list)
    #: (control, group) judged on a group event and found compliant: resolved after a revoke
    passing: list[tuple[Any, GroupContext]] = field(default_factory=list)

    @property
    def violating(self) -> bool:
        return bool(self.tiers or self.sg5 or self.managed or any(p.violating for p in self.plans))


def handle(event: Any, rt: Runtime, context: Any = None) -> dict[str, Any]:
    """Handle one EventBridge event: an ENI attachment, rules on a group, or a model's VPC config."""
    call, ignored = admit(event, rt.settings)
    if ignored:
        return ignored
    if call.event_name in launch_template.EVENTS:
        # A template is not traffic: detect only, judged whole, findings resolve (issue 9 A).
        return launch_template.handle(call, rt, context)
    subjects = extract_subjects(call)
    if subjects.kind == "none":
        logger.info("nothing to judge", extra={"reason": subjects.reason, "event_name": call.event_name})
        return {"status": "no-op", "reason": subjects.reason, "event_id": call.event_id}
    net = rt.network
    if subjects.kind == "endpoint":
        # The record names the endpoint; its ENIs (interface endpoints only) are AWS's to say.
        eni_ids = net.endpoint_enis(subjects.endpoint_ids)
        if eni_ids is None:
            logger.info("resources gone", extra={"event_name": call.event_name})
            return {"status": "resource-gone", "event_id": call.event_id}
        if not eni_ids:
            return {
                "status": "no-op",
                "reason": "endpoint without network interfaces",
                "event_id": call.event_id,
            }
        subjects = replace(subjects, kind="enis", eni_ids=tuple(eni_ids))
    found = _assess(call, subjects, rt, net)
    if found is None:
        logger.info("resources gone", extra={"event_name": call.event_name})
        return {"status": "resource-gone", "event_id": call.event_id}
    if call.event_name in RESOLVING:
        # Reads and Security Hub only, whatever else the assessment found: a person's revoke
        # never leads to an EC2 write (a migration waits for an Authorize or the sweep).
        if found.passing:
            return _resolve(call, found, rt, now=iso_now())
        status = "still-violating" if found.violating else "compliant"
        logger.info("revoke judged", extra={"status": status, "event_name": call.event_name})
        return {"status": status, "event_id": call.event_id}
    if not found.violating:
        # nothing left to do: an earlier attempt may have done it and died before reporting
        resumed = resume(call, rt)
        if resumed is not None:
            return resumed
        logger.info("no violation", extra={"event_name": call.event_name})
        return {"status": "compliant", "event_id": call.event_id}
    return rt.run_once(call.event_id, lambda: _act_and_report(call, found, rt, net), context)


#: calls that can only remove rules: findings may resolve, nothing is changed
RESOLVING = frozenset({"RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress"})


def _resolve(call: ApiCall, found: Assessment, rt: Runtime, *, now: str) -> dict[str, Any]:
    findings = [
        make_finding(
            call,
            control,
            resource=group_resource(ctx),
            severity="INFORMATIONAL",
            score=0,
            description=(
                f"{ctx.group_id} no longer violates {control.id} (seen after {call.event_name} by "
                f"{call.actor.display}, {call.event_id})."
            ),
            action="already-compliant",
            compliant=True,
            now=now,
        )
        for control, ctx in found.passing
    ]
    return publish(
        call,
        rt,
        findings,
        None,
        remediated=False,
        details={"resolved": [f["Id"] for f in findings]},
    ) | {"status": "resolved"}


# --- reads and decisions ----------------------------------------------------------------


def _assess(call: ApiCall, subjects: Subjects, rt: Runtime, net: Ec2NetworkAdapter) -> Assessment | None:
    policy = rt.policy
    out = Assessment()
    vpcs: list[str] = []
    unfinished: dict[str, Mapping[str, Any]] = {}
    if subjects.kind == "managed":
        groups = net.groups(subjects.group_ids)
        defaults = [g for g in subjects.group_ids if g in groups and groups[g].is_default]
        unnamed = not subjects.group_ids
        if (defaults or unnamed) and policy.mode("PER-DSG-2") != "off":
            out.managed.append((subjects, defaults))
        return out
    if subjects.kind == "group":
        groups = net.groups(subjects.group_ids)
        if not groups:
            return None
        vpcs.extend(_assess_groups(call, groups.values(), rt, net, out))
    else:
        enis = net.enis(subjects.eni_ids, subjects.instance_ids)
        if not enis:
            return None
        if policy.mode("PER-TIER-1") != "off":
            tags = {gid: g.tags for gid, g in net.groups(gid for e in enis for gid in e.group_ids).items()}
            out.tiers.extend(tier_findings(enis, tags, policy))
        vpcs.extend(e.vpc_id for e in enis if e.default_group_id)
        unfinished = _unfinished(call, enis, rt)
        vpcs.extend(unfinished)
    for vpc in dict.fromkeys(vpcs):
        plan = _plan_vpc(call, vpc, rt, net, unfinished.get(vpc))
        if subjects.kind == "group" and vpc not in unfinished and not (plan and plan.violating):
            # A retry after a crash between this event's revoke and its report: the default
            # group named is clean now, but the migration's record is not complete (one read,
            # only when the group is found clean).
            record = rt.audit.get(audit_id_for(call.event_id, vpc)) if call.event_id else None
            if record and record.get("status") != "complete":
                plan = _plan_vpc(call, vpc, rt, net, record)
        if plan is not None:
            out.plans.append(plan)
            d = plan.default
            named = subjects.kind == "group" and d.group_id in subjects.group_ids
            if named and not d.rules and plan.dsg1_mode != "off":
                out.passing.append((DSG1, _vpc_ctx(call, rt, vpc, d.group_id, "default", d.tags)))
    return out


def _assess_groups(
    call: ApiCall, groups: Iterable[GroupInfo], rt: Runtime, net: Ec2NetworkAdapter, out: Assessment
) -> list[str]:
    """Judge the named groups' whole rule sets: PER-SG-5 for tier groups (passing ones kept,
    for a revoke to resolve); returns the VPCs whose default group was named."""
    vpcs = []
    policy = rt.policy
    for g in groups:
        if g.is_default:
            vpcs.append(g.vpc_id)
        elif policy.mode("PER-SG-5") != "off" and policy.tiers.tier_of(g.tags):
            # Not resolved here: without a ledger of which tier groups have a PER-SG-5 finding,
            # a revoke would create archived findings for groups that never had one.
            _check_sg5(call, g, rt, net, out)
    return vpcs


def _unfinished(call: ApiCall, enis: Sequence[Eni], rt: Runtime) -> dict[str, Mapping[str, Any]]:
    """A retry after a crash half-way: the event's own ENI may already be off the default
    group, but the migration it started is not done (VPC -> its audit record). Only ENIs on
    one of Perimeter's groups cost the audit read."""
    out: dict[str, Mapping[str, Any]] = {}
    for vpc in dict.fromkeys(e.vpc_id for e in enis if not e.default_group_id and _on_perimeter_group(e)):
        record = rt.audit.get(audit_id_for(call.event_id, vpc))
        if record and record.get("status") != "complete":
            out[vpc] = record
    return out


def _on_perimeter_group(eni: Eni) -> bool:
    return any(n.startswith(INTERIM_PREFIX) or n == QUARANTINE_NAME for _, n in eni.groups)


def _vpc_ctx(
    call: ApiCall,
    rt: Runtime,
    vpc_id: str,
    group_id: str,
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> GroupContext:
    facts = rt.ec2.vpc_facts(vpc_id)
    return GroupContext(
        group_id=group_id,
        account=call.account,
        region=call.region,
        group_name=name,
        vpc_id=vpc_id,
        tags=tags or {},
        vpc_cidrs=facts.cidrs,
        internet_routed=facts.internet_routed,
    )


def _plan_vpc(
    call: ApiCall,
    vpc_id: str,
    rt: Runtime,
    net: Ec2NetworkAdapter,
    unfinished: Mapping[str, Any] | None = None,
) -> MigrationPlan | None:
    policy = rt.policy
    default = net.default_group(vpc_id)
    if default is None:
        return None
    if unfinished:
        # Resuming this event's migration: plan from the default group as the first attempt
        # saw it. The rules it already revoked are gone from the group but not from what the
        # event did: without them the plan would find nothing to do, and the report (and the
        # record's completion) of what was done would be lost.
        held = {r.rule_id for r in default.rules}
        revoked = [
            Rule.from_dict(r)
            for r in unfinished.get("default_rules", [])
            if r.get("rule_id") and r.get("rule_id") not in held
        ]
        if revoked:
            default = replace(default, rules=(*default.rules, *revoked))
    deps = net.dependants(default.group_id)
    ctx = _vpc_ctx(call, rt, vpc_id, SELF)

    undone: list[Any] = []

    def exempt(control_id: str) -> str | None:
        if rt.exemptions is not None and not undone:
            # The undo's exemptions of this default group (a migration undone), read once.
            undone.append(rt.exemptions.for_resource(default.group_id))
        ex = policy.exemption_for(
            control_id,
            group_id=default.group_id,
            vpc_id=vpc_id,
            tags=default.tags,
            principal_arn=call.actor.arn,
            extra=undone[0] if undone else (),
        )
        return ex.label if ex else None

    # Only a move can cut traffic that other groups grant to the default group's members.
    referenced = (
        net.rules_referencing(default.group_id) if deps and policy.mode("PER-DSG-2") == "enforce" else []
    )
    return plan_migration(
        default,
        deps,
        policy,
        ctx,
        exempt_dsg1=exempt("PER-DSG-1"),
        exempt_dsg2=exempt("PER-DSG-2"),
        referenced_by=referenced,
    )


def _check_sg5(call: ApiCall, g: GroupInfo, rt: Runtime, net: Ec2NetworkAdapter, out: Assessment) -> bool:
    """Judge the tier group's whole rule set for PER-SG-5; True when it violates."""
    ctx = _vpc_ctx(call, rt, g.vpc_id, g.group_id, g.name, g.tags)
    hits = [r for r in net.group_rules(g.group_id) if SG5.matches(r, ctx, rt.policy)]
    if hits:
        out.sg5.append((ctx, hits))
    return bool(hits)


# --- acting -----------------------------------------------------------------------------


def audit_id_for(event_id: str | None, vpc_id: str) -> str:
    return f"{event_id or 'no-event-id'}#dsg#{vpc_id}"


def _merge_record(
    prior: Mapping[str, Any] | None, plan: MigrationPlan, call: ApiCall, audit_id: str, now: str
) -> dict[str, Any]:
    """The write-ahead record. On a retry the first attempt's record wins for every ENI it
    already lists (its ``before`` is the true prior state); new dependants are added."""
    enis: dict[str, Any] = dict((prior or {}).get("enis", {}))
    for m in plan.moves:
        enis.setdefault(
            m.eni_id, {"before": list(m.before), "instance_id": m.instance_id, "target": m.target}
        )
    rules = {r["rule_id"]: r for r in (prior or {}).get("default_rules", []) if r.get("rule_id")}
    for r in plan.revoke:
        rules.setdefault(str(r.rule_id), r.to_dict())
    return {
        "audit_id": audit_id,
        "time": (prior or {}).get("time", now),
        "updated": now,
        "action": AUDIT_ACTION,
        "event_id": call.event_id,
        "event_name": call.event_name,
        "actor": call.actor.display,
        "account": call.account,
        "region": call.region,
        "vpc_id": plan.vpc_id,
        "group_id": plan.default.group_id,
        "default_group_id": plan.default.group_id,
        # The group an earlier attempt made is the one its ENIs joined: its record stands
        # (a retry plans from a default group some of whose members already left).
        "interim": (prior or {}).get("interim")
        if (prior or {}).get("interim", {}).get("group_id")
        else {
            "name": plan.interim_name,
            "group_id": None,
            "created": False,
            "rules": [r.to_dict() for r in plan.interim_rules],
        },
        "quarantine": (prior or {}).get(
            "quarantine", {"name": QUARANTINE_NAME, "group_id": None, "created": False}
        ),
        "enis": enis,
        "default_rules": list(rules.values()),
        "status": "started",
        "undo": f"perimeter restore {audit_id}",
    }


def _ensure_interim(plan: MigrationPlan, net: Ec2NetworkAdapter, audit_id: str) -> tuple[str, bool]:
    gid, created = net.ensure_group(
        plan.vpc_id,
        plan.interim_name,
        f"Perimeter interim group for dependants of {plan.default.group_id}",
        {
            MANAGED_TAG: "true",
            "perimeter:purpose": "default-sg-interim",
            "perimeter:default-sg": plan.default.group_id,
        },
        created_by=audit_id,
    )
    want = [materialize(r, gid) for r in plan.interim_rules]
    have = net.group_rules(gid)
    have_keys = {r.key for r in have}
    missing = [r for r in want if r.key not in have_keys]
    if missing:
        net.authorize(gid, missing)
    want_keys = {r.key for r in want}
    extra = [r for r in have if r.key not in want_keys]
    # AWS gives a new group an allow-all egress rule; drop it when the default group had none,
    # but never narrow a group somebody already uses.
    if extra and not net.in_use(gid):
        net.revoke_by_id(gid, extra)
    return gid, created


def _ensure_quarantine(plan: MigrationPlan, net: Ec2NetworkAdapter, audit_id: str) -> tuple[str, bool]:
    gid, created = net.ensure_group(
        plan.vpc_id,
        QUARANTINE_NAME,
        "Perimeter quarantine: no traffic in or out",
        {MANAGED_TAG: "true", "perimeter:purpose": "quarantine"},
        created_by=audit_id,
    )
    extra = net.group_rules(gid)
    if extra and not net.in_use(gid):
        net.revoke_by_id(gid, extra)
    return gid, created


def migrate(
    plan: MigrationPlan,
    call: ApiCall,
    rt: Runtime,
    net: Ec2NetworkAdapter,
    now: str,
    *,
    complete: bool = True,
) -> Migration:
    """Carry out a plan; every step is recorded before it is taken. ``complete=False`` leaves
    the record's completion to the caller (``Migration.finish``), once the report is safe."""
    result = Migration(plan, audit_id=audit_id_for(call.event_id, plan.vpc_id))
    prior = rt.audit.get(result.audit_id)
    record = _merge_record(prior, plan, call, result.audit_id, now)
    rt.audit.put(record)  # write-ahead: nothing changes that is not recorded
    targets: dict[str, str] = {}
    if any(m.target == "interim" for m in plan.moves):
        result.interim_id, created = _ensure_interim(plan, net, str(result.audit_id))
        record["interim"]["group_id"] = result.interim_id
        record["interim"]["created"] = record["interim"]["created"] or created
        targets["interim"] = result.interim_id
    if plan.needs_quarantine:
        result.quarantine_id, created = _ensure_quarantine(plan, net, str(result.audit_id))
        record["quarantine"] = {
            "name": QUARANTINE_NAME,
            "group_id": result.quarantine_id,
            "created": record["quarantine"].get("created", False) or created,
        }
        targets["quarantine"] = result.quarantine_id
    if targets:
        rt.audit.put(record)  # the groups to delete on restore are known before anyone joins them
    default_id = plan.default.group_id
    for move in plan.moves:
        added, final = move.with_target(targets[move.target], default_id)
        ok = True
        if added != move.before:
            ok = net.set_groups(move.eni_id, added)
        if ok:
            ok = net.set_groups(move.eni_id, final)
        if ok:
            result.moved.append((move.eni_id, move.before, final))
            record["enis"][move.eni_id]["after"] = list(final)
        else:
            result.gone.append(move.eni_id)
    # A retry resuming this migration: the ENIs an earlier attempt moved are no longer the
    # default group's dependants, so no move above names them; they were moved all the same
    # and the report must say so (the record holds what the earlier attempt did).
    done = {eni for eni, _, _ in result.moved} | set(result.gone)
    earlier = [e for e in record["enis"] if e not in done]
    for eni in net.enis(earlier) if earlier else []:
        if default_id not in eni.group_ids:
            entry = record["enis"][eni.eni_id]
            entry["after"] = entry.get("after") or list(eni.group_ids)
            result.moved.append((eni.eni_id, tuple(entry["before"]), tuple(entry["after"])))
            result.earlier.append(eni)
    if plan.revoke:
        outcome = rt.ec2.revoke(default_id, plan.revoke)
        gone_ids = {r.rule_id for r in outcome.already_gone}
        prior_ids = {r.get("rule_id") for r in (prior or {}).get("default_rules", [])}
        # A rule the earlier attempt at this event recorded and that is gone now was revoked
        # by that attempt: it counts as revoked (the record already says so).
        result.revoked = [*outcome.revoked, *(r for r in outcome.already_gone if r.rule_id in prior_ids)]
        # Keep the record exact: restore puts back only what Perimeter removed.
        record["default_rules"] = [
            r
            for r in record["default_rules"]
            if r.get("rule_id") not in gone_ids or r.get("rule_id") in prior_ids
        ]
        record["rules"] = record["default_rules"]
    result.record = record
    if complete:
        result.finish(rt)
    return result


def _act_and_report(call: ApiCall, found: Assessment, rt: Runtime, net: Ec2NetworkAdapter) -> dict[str, Any]:
    now = iso_now()
    migrations = [
        migrate(p, call, rt, net, now, complete=False) if p.acts else Migration(p)
        for p in found.plans
        if p.violating
    ]
    findings: list[dict[str, Any]] = []
    lines: list[str] = []
    top: list[tuple[str, str, str, str]] = []  # (severity, control, action, resource)
    for m in migrations:
        for f, line in _migration_findings(call, m, rt, now):
            findings.append(f)
            lines.append(line)
            top.append(
                (f["Severity"]["Label"], f["GeneratorId"], f["ProductFields"]["perimeter/action"], line)
            )
    for extra in (
        _tier_findings(call, found, now),
        _sg5_findings(call, found, rt, now),
        _managed_findings(call, found, now),
    ):
        for f, line in extra:
            findings.append(f)
            lines.append(line)
            top.append(
                (f["Severity"]["Label"], f["GeneratorId"], f["ProductFields"]["perimeter/action"], line)
            )
    return publish(
        call,
        rt,
        findings,
        _notification(call, migrations, findings, lines, top),
        remediated=any(m.moved or m.revoked for m in migrations),
        details={"vpcs": [_migration_summary(m) for m in migrations]},
        outbox=True,
        # Completed only once the report is in the outbox: a crash in between leaves the record
        # started, and the retry resumes the migration and rebuilds the report.
        before_send=lambda: [m.finish(rt) for m in migrations],
    )


def judge_default_groups(
    call: ApiCall, vpc_ids: Sequence[str], rt: Runtime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The sweep's way in: the same plan, migration and findings as an event, for these VPCs'
    default groups. Returns (findings, summaries); the caller reports them with its own."""
    net = rt.network
    now = iso_now()
    plans = [p for p in (_plan_vpc(call, v, rt, net) for v in dict.fromkeys(vpc_ids)) if p and p.violating]
    migrations = [migrate(p, call, rt, net, now) if p.acts else Migration(p) for p in plans]
    findings = [f for m in migrations for f, _ in _migration_findings(call, m, rt, now)]
    return findings, [_migration_summary(m) for m in migrations]


def _migration_summary(m: Migration) -> dict[str, Any]:
    return {
        "vpc_id": m.plan.vpc_id,
        "default_group_id": m.plan.default.group_id,
        "interim_group_id": m.interim_id,
        "quarantine_group_id": m.quarantine_id,
        "moved": [{"eni": e, "before": list(b), "after": list(a)} for e, b, a in m.moved],
        "eni_gone": m.gone,
        "revoked": [r.rule_id for r in m.revoked],
        "left_out_of_interim": [f"{r.describe()} ({', '.join(c)})" for r, c in m.plan.dropped],
        "blocked": list(m.plan.why_not),
        "fixes": {b.eni.eni_id: b.fix for b in m.plan.blockers},
        "audit_id": m.audit_id,
    }


# --- findings ---------------------------------------------------------------------------


def _sev(rt: Runtime, score: int) -> str:
    return rt.policy.thresholds.severity_of(score)


def _dsg1_score(m: Migration, rt: Runtime, call: ApiCall) -> int:
    ctx = _vpc_ctx(call, rt, m.plan.vpc_id, m.plan.default.group_id, "default", m.plan.default.tags)
    cidr_rules = [r for r in m.plan.default.rules if r.cidr and not r.egress]
    return max([40, *(score_rule(r, ctx, rt.policy).value for r in cidr_rules)])


def _migration_findings(
    call: ApiCall, m: Migration, rt: Runtime, now: str
) -> list[tuple[dict[str, Any], str]]:
    plan = m.plan
    out: list[tuple[dict[str, Any], str]] = []
    dsg = plan.default.group_id
    undo = (
        f' Undo (restore and exempt): the Security Hub action "Perimeter undo", or perimeter restore'
        f" FINDING_ID; restore only: perimeter restore {m.audit_id}."
        if m.audit_id
        else ""
    )
    left_out = "; ".join(f"{r.describe()} [{', '.join(c)}]" for r, c in plan.dropped) or "nothing"
    if plan.dsg1_violated:
        score = _dsg1_score(m, rt, call)
        rules = ", ".join(r.describe() for r in plan.default.rules)
        if m.emptied:
            action = "revoked"
            text = (
                f"Perimeter emptied default SG {dsg} of VPC {plan.vpc_id}: revoked {len(m.revoked)} rule(s) "
                f"({rules}) after moving {len(m.moved)} ENI(s) to "
                f"{m.interim_id or m.quarantine_id or 'no group'}. "
                f"Left out of the interim group: {left_out}."
            )
        else:
            action = "detected"
            text = (
                f"Default SG {dsg} of VPC {plan.vpc_id} has rules: {rules}. "
                f"Not revoked: {'; '.join(plan.why_not)}."
            )
        f = make_finding(
            call,
            DSG1,
            resource=FindingResource(
                "AwsEc2SecurityGroup",
                ec2_arn(call.region, call.account, "security-group", dsg),
                dsg,
                {"AwsEc2SecurityGroup": {"GroupId": dsg, "GroupName": "default", "VpcId": plan.vpc_id}},
                plan.default.tags,
            ),
            severity=_sev(rt, score),
            score=score,
            description=text + (undo if m.emptied else ""),
            action=action,
            compliant=m.emptied,
            extra_fields={
                "perimeter/revoked_rule_ids": ",".join(str(r.rule_id) for r in m.revoked),
                "perimeter/interim_group": m.interim_id or "",
                "perimeter/left_out_of_interim": left_out[:2000],
                "perimeter/audit_id": m.audit_id or "",
            },
            now=now,
        )
        out.append((f, f"PER-DSG-1 {action}: {dsg} ({len(plan.default.rules)} rule(s))"))
    if plan.dsg2_violated or m.earlier:
        moved = {e: (b, a) for e, b, a in m.moved}
        fixes = {b.eni.eni_id: b.fix for b in plan.blockers}
        for eni in [*plan.dependants, *m.earlier]:
            out.append(
                _eni_finding(call, m, eni, moved.get(eni.eni_id), fixes.get(eni.eni_id), rt, now, undo)
            )
    return out


def _eni_finding(
    call: ApiCall,
    m: Migration,
    eni: Eni,
    moved: tuple[Any, Any] | None,
    fix: str | None,
    rt: Runtime,
    now: str,
    undo: str,
) -> tuple[dict[str, Any], str]:
    dsg = m.plan.default.group_id
    if moved:
        before, after = moved
        action = "moved"
        text = (
            f"Perimeter moved {eni.label} off default SG {dsg}: "
            f"groups {', '.join(before)} -> {', '.join(after)}. "
            f"Traffic among the moved ENIs flows as before (the interim group refers to itself).{undo}"
        )
    else:
        action = "detected"
        why = fix or "; ".join(m.plan.why_not) or "not moved"
        text = f"{eni.label} uses default SG {dsg} (groups {', '.join(eni.group_ids)}). Fix: {why}"
    other = {"VpcId": eni.vpc_id, "DefaultGroupId": dsg, "GroupsBefore": ",".join(eni.group_ids)}
    if moved:
        other["GroupsAfter"] = ",".join(moved[1])
    if eni.instance_id:
        other["InstanceId"] = eni.instance_id
    f = make_finding(
        call,
        DSG2,
        resource=FindingResource(
            "AwsEc2NetworkInterface",
            ec2_arn(call.region, call.account, "network-interface", eni.eni_id),
            eni.eni_id,
            {"Other": other},
            eni.tags,
        ),
        severity=_sev(rt, 50),
        score=50,
        description=text,
        action=action,
        compliant=bool(moved),
        extra_fields={"perimeter/fix": (fix or "")[:2000], "perimeter/audit_id": m.audit_id or ""},
        now=now,
    )
    return f, f"PER-DSG-2 {action}: {eni.label}" + (f" -> {','.join(moved[1])}" if moved else "")


def _tier_findings(call: ApiCall, found: Assessment, now: str) -> list[tuple[dict[str, Any], str]]:
    out = []
    for t in found.tiers:
        others = ", ".join(f"{what} ({tier})" for what, tier in t.other)
        text = (
            f"{t.eni.label} carries model-tier group(s) {', '.join(t.model_groups)} together with {others}: "
            f"both tiers get each other's access. Give each tier its own group."
        )
        f = make_finding(
            call,
            TIER1,
            resource=FindingResource(
                "AwsEc2NetworkInterface",
                ec2_arn(call.region, call.account, "network-interface", t.eni.eni_id),
                t.eni.eni_id,
                {
                    "Other": {
                        "VpcId": t.eni.vpc_id,
                        "ModelGroups": ",".join(t.model_groups),
                        "OtherTiers": others,
                    }
                },
                t.eni.tags,
            ),
            severity="MEDIUM",
            score=60,
            description=text,
            action="detected",
            compliant=False,
            now=now,
        )
        out.append((f, f"PER-TIER-1 detected: {t.eni.eni_id} {', '.join(t.model_groups)} + {others}"))
    return out


def _sg5_findings(
    call: ApiCall, found: Assessment, rt: Runtime, now: str
) -> list[tuple[dict[str, Any], str]]:
    out = []
    for ctx, rules in found.sg5:
        listed = ", ".join(f"{r.describe()} ({r.rule_id})" for r in rules)
        text = (
            f"{ctx.tier(rt.policy)}-tier group {ctx.group_id} admits CIDR(s) inside VPC "
            f"{ctx.vpc_id}: {listed}. "
            f"Reference the calling tier's security group instead."
        )
        f = make_finding(
            call,
            SG5,
            resource=group_resource(ctx),
            severity="MEDIUM",
            score=40,
            description=text,
            action="detected",
            compliant=False,
            now=now,
        )
        out.append((f, f"PER-SG-5 detected: {ctx.group_id} {listed}"))
    return out


def _managed_findings(call: ApiCall, found: Assessment, now: str) -> list[tuple[dict[str, Any], str]]:
    out = []
    for subjects, defaults in found.managed:
        res = subjects.managed
        assert res is not None
        fix = fix_for_managed(res, defaults)
        which = ", ".join(defaults) if defaults else "the VPC's default group (no group named)"
        text = (
            f"{res.type} {res.name} uses default SG {which}. "
            f"Perimeter cannot change this in place. Fix: {fix}"
        )
        f = make_finding(
            call,
            DSG2,
            resource=FindingResource(
                res.asff_type,
                res.arn,
                res.name,
                {"Other": {"Kind": res.type, "SecurityGroups": ",".join(res.group_ids)}},
            ),
            severity="MEDIUM",
            score=50,
            description=text,
            action="detected",
            compliant=False,
            extra_fields={"perimeter/fix": fix[:2000]},
            now=now,
        )
        out.append((f, f"PER-DSG-2 detected: {res.type} {res.name} on {which}"))
    return out


def _notification(
    call: ApiCall,
    migrations: Sequence[Migration],
    findings: Sequence[Mapping[str, Any]],
    lines: Sequence[str],
    top: Sequence[tuple[str, str, str, str]],
) -> Notification:
    sev, control, action, _ = max(top, key=lambda t: SEVERITY_ORDER.index(t[0]))
    moved = sum(len(m.moved) for m in migrations)
    emptied = [m.plan.default.group_id for m in migrations if m.emptied]
    if moved or emptied:
        head = f"moved {moved} ENI(s)" + (f", emptied {', '.join(emptied)}" if emptied else "")
    else:
        head = f"{action} on {top[0][3].split(': ', 1)[-1]}"
    undo = [f"perimeter restore {m.audit_id}" for m in migrations if m.audit_id]
    fixes = [f"Fix for {b.eni.eni_id}: {b.fix}" for m in migrations for b in m.plan.blockers]
    return call_notification(
        call,
        subject=f"[Perimeter] {worst(t[0] for t in top)} {control} {head}",
        lines=[*lines, *fixes],
        details={"migrations": [_migration_summary(m) for m in migrations]},
        attributes={"control": control, "severity": sev, "action": ",".join(sorted({t[2] for t in top}))},
        findings=findings,
        undo=undo,
    )
