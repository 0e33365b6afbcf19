"""The sweep: judge every resource of the region with the event path's evaluations, act per
mode, and make Security Hub tell the truth (DESIGN §4b, "one evaluation, two ways in").

Reads, all paginated listings (``adapters/inventory.py``): security groups, ENIs, VPCs, route
tables; for the review controls VPC endpoints, launch templates and peering connections, then
DescribeStaleSecurityGroups for peered VPCs only; rule ids only for the groups a revoke needs;
SageMaker models and notebooks (SageMaker has no batch describe: one DescribeModel each);
Bedrock Marketplace endpoints (one GetMarketplaceModelEndpoint each: the listing carries no
configuration); every IAM role, user and customer managed policy (one paginated
GetAccountAuthorizationDetails); the managed prefix lists the rules name (entries per customer
list, cached by version); the flow logs of every VPC; the internet gateways, then, when one
is attached, the route tables, network ACLs, subnets and ENIs (PER-NET-1, region-wide);
Perimeter's active findings; the review state; the findings ledger.

Then, per resource kind, the event path's own code: ``security_groups.evaluate`` for every group (a group that
serves a model as the model tier, as ModelPosture judges it), ``default_groups.service`` for default
groups that have rules or dependants, ``flow_log_issues`` for every VPC, ``model_posture.service`` for
models, notebooks and Marketplace endpoints, ``iam.service.sweep_account`` (IamGuard's
``principal_issues``/``invoke_issues``) for PER-IAM-1; and the review controls PER-REV-1/2
(``review.evaluate``). The findings ledger is kept by the event path's rules (``ledger.observed``).

Writes, only what modes allow: at most one revoke per offending group and direction (audit
record first, 25 a batch; revokes start while the rest of the groups are judged),
default-SG migrations, flow logs, unused groups deleted (PER-REV-1 enforce, audit record
first); findings in batches of 100: every current violation (first
sighting kept), and every active Perimeter finding in the sweep's scope that it did not raise
again, resolved (PASSED/ARCHIVED); one SNS message when something is new, changed or resolved.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, as_completed
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from perimeter.adapters.ec2 import context_of_group
from perimeter.adapters.inventory import InventoryAdapter, Listing, prefix_lists_named
from perimeter.adapters.ledger import observed
from perimeter.adapters.review_state import ReviewStateAdapter
from perimeter.core.arns import partition_of
from perimeter.core.events import Actor, ApiCall
from perimeter.core.exemptions import expiring, from_tags
from perimeter.core.publish import mark_dry_run
from perimeter.core.report import (
    Outcome,
    build_audit_record,
    build_finding,
    call_notification,
    iso_now,
    remaining,
    worst,
)
from perimeter.core.rules import Rule
from perimeter.core.runtime import ConfigError, Runtime, Started
from perimeter.core.telemetry import logger, record_findings
from perimeter.default_groups.service import judge_default_groups
from perimeter.iam.service import sweep_account
from perimeter.model_posture.service import as_model_tier, sweep_marketplace, sweep_models
from perimeter.posture.act import flow_log_evaluation, remediate
from perimeter.posture.controls import (
    Issue,
    Judged,
    exempt_tag_issues,
    exempt_tag_split,
    issue_finding,
    judge,
    merge_issues,
)
from perimeter.review.evaluate import (
    compliant,
    covered,
    dangling_rules,
    judge_group,
    keep_first_sighting,
    merge_stale,
    resolved,
    review_unused,
    stale_issue,
    to_resolve,
    unused_groups,
    unused_issue,
)
from perimeter.security_groups.context import GroupContext
from perimeter.security_groups.evaluate import SG_CONTROLS, GroupDecision

SWEEP_EVENT = "PerimeterSweep"
SG_CONTROL_IDS = tuple(c.id for c in SG_CONTROLS)
#: audit records a BatchWriteItem takes
AUDIT_BATCH = 25
#: findings a BatchImportFindings takes
FINDINGS_BATCH = 100
#: items of each list an SNS message names (SNS messages are at most 256 KB)
NOTE_ITEMS = 100


def sweep_call(rt: Runtime, event: Mapping[str, Any] | None, now: str, account: str) -> ApiCall:
    """The sweep as the reports see it: no CloudTrail event, Perimeter itself found it."""
    sweep_id = str((event or {}).get("id") or f"sweep-{uuid.uuid4()}")
    if not sweep_id.startswith("sweep-"):
        sweep_id = f"sweep-{sweep_id}"
    return ApiCall(
        event_id=sweep_id,
        event_name=SWEEP_EVENT,
        event_source="perimeter",
        event_time=now,
        region=rt.settings.region,
        account=account,
        actor=Actor(None, "PerimeterSweep", account, "unknown (found by Perimeter's sweep)", None, None),
        request={},
        response={},
        error_code=None,
        error_message=None,
    )


@dataclass
class Sweep:
    call: ApiCall
    now: str
    listing: Listing
    contexts: dict[str, GroupContext]
    #: the sweep's work on the container's pool (``handle`` waits for all of it)
    work: Started
    findings: list[dict[str, Any]] = field(default_factory=list)
    revoked: dict[str, list[str]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    #: Perimeter's active findings and the review state, when read beside the listing
    existing: dict[str, dict[str, Any]] | None = None
    unused_state: dict[str, str] | None = None
    #: groups a SageMaker model names (judged as the model tier, as ModelPosture does)
    model_groups: set[str] = field(default_factory=set)
    #: groups a model or a notebook names (in use, for PER-REV-1)
    used_by_models: set[str] = field(default_factory=set)
    #: VPCs that hold a model or a notebook (PER-FL-1's default scope)
    model_vpcs: set[str] = field(default_factory=set)
    #: the findings ledger as read beside the listing (None: no ledger configured)
    ledger: dict[str, dict[str, str]] | None = None
    #: ledger items this sweep changed, written with the findings
    ledger_writes: dict[str, dict[str, str]] = field(default_factory=dict)
    #: group id -> the ledger's first times of its PER-EXM-1 finding (a malformed tag)
    tag_seen: dict[str, Any] = field(default_factory=dict)
    #: the IAM evaluation, when read beside the listing
    principals: Any = None
    #: reads still in flight, by the field each fills (``_settle``)
    pending: dict[str, Future[Any]] = field(default_factory=dict)


def handle(event: Mapping[str, Any] | None, rt: Runtime, context: Any = None) -> dict[str, Any]:
    """Sweep the region (a scheduled EventBridge event, or the CLI)."""
    now = iso_now()
    policy = rt.policy
    on = {c for c in policy.modes if policy.mode(c) != "off"}
    groups_on = bool(on & set(SG_CONTROL_IDS))
    account_known = rt.settings.account_id
    # Every client and adapter the reads use is built here, on this thread (a session is not
    # thread-safe); in Lambda the init phase has built the clients already.
    inv = InventoryAdapter(rt.client("ec2"))
    for service in ("dynamodb", "securityhub", "sns"):
        rt.client(service)
    ledger_store = rt.ledger if groups_on else None
    state_store = _review_state(rt) if "PER-REV-1" in on else None
    iam = None
    if policy.mode("PER-IAM-1") != "off" and account_known:
        from perimeter.adapters.iam import IamAdapter

        iam = IamAdapter(rt.client("iam"))
    # The reads the judging needs go out first, together: the region's EC2 listings (security
    # groups first, the longest) and the undo's exemptions (known before any revoke). What
    # the sweep needs only later (Perimeter's active findings, the findings ledger, the review
    # state, the account's IAM details) goes out once the listings are in, so that it
    # overlaps the judging rather than the listing every step waits on; each is resolved where
    # it is used. All of it rides on the container's pool, started in the init phase, and is
    # waited for on the way out, even on a failure.
    with rt.started() as work:
        listed = inv.start_listing(
            enis=bool(on & {"PER-DSG-1", "PER-DSG-2", "PER-REV-1"}),
            vpcs="PER-FL-1" in on,
            review=bool(on & {"PER-REV-1", "PER-REV-2"}),
            submit=work.submit,
        )
        undone = work.submit(rt.exemptions.scan) if rt.exemptions is not None else None
        listing = listed()
        pending: dict[str, Future[Any]] = {}
        if account_known:
            pending["existing"] = work.submit(_active_findings, rt, account_known)
        if ledger_store is not None:
            pending["ledger"] = work.submit(ledger_store.snapshot)
        if state_store is not None:
            pending["unused_state"] = work.submit(state_store.unused_since)
        if iam is not None:
            pending["principals"] = work.submit(sweep_account, iam, account_known)
        exemptions = undone.result() if undone is not None else []
        return _sweep(event, rt, now, inv, listing, exemptions, pending, work)


def _sweep(
    event: Mapping[str, Any] | None,
    rt: Runtime,
    now: str,
    inv: InventoryAdapter,
    listing: Listing,
    exemptions: list[Any],
    pending: dict[str, Future[Any]],
    work: Started,
) -> dict[str, Any]:
    policy = rt.policy
    account = rt.settings.account_id or next(
        (str(g["OwnerId"]) for g in listing.groups if g.get("OwnerId")), ""
    )
    if not account:
        raise ConfigError("PERIMETER_ACCOUNT_ID is not set and the region has no security group to tell it")
    call = sweep_call(rt, event, now, account)
    logger.set_correlation_id(call.event_id)
    rt.ec2.remember_vpcs(listing.vpc_facts)  # the default-SG path reads them again: from cache
    # The union rule needs the entries of the customer prefix lists the rules name: read once
    # a sweep (and once per list version per container), only when some rule names a list.
    named = {str(g["GroupId"]): lists for g in listing.groups if (lists := prefix_lists_named(g))}
    pls = rt.ec2.region_prefix_lists(set().union(*named.values())) if named else {}
    contexts = {
        str(g["GroupId"]): context_of_group(
            g,
            account=account,
            region=call.region,
            vpc=listing.vpc_facts.get(str(g.get("VpcId", ""))),
            prefix_lists={p: pls[p] for p in named.get(str(g["GroupId"]), ()) if p in pls},
        )
        for g in listing.groups
    }
    by_resource: dict[str, list[Any]] = {}
    for ex in exemptions:
        by_resource.setdefault(str(ex.resource), []).append(ex)
    for gid, extra in by_resource.items():
        if gid in contexts:
            contexts[gid] = replace(contexts[gid], exemptions=tuple(extra))
    s = Sweep(call, now, listing, contexts, work, pending=pending)
    s.details["exemptions_expiring"] = _expiring(s, policy, exemptions)
    s.model_groups, model_judged = _models(s, rt)
    if policy.mode("PER-IAM-1") != "off":
        _principals(s, rt)
    _groups(s, rt, inv, s.model_groups)
    _default_groups(s, rt)
    _flow_logs(s, rt)
    _reachability(s, rt)
    s.findings.extend(model_judged)
    if policy.mode("PER-REV-1") != "off":
        _unused(s, rt, inv)
    return _report(s, rt)


def _expiring(s: Sweep, policy: Any, undone: list[Any]) -> list[dict[str, str]]:
    """Exemptions that end within a week, from all three sources: the policy file's, the
    groups' ``perimeter:exempt`` tags, the undo's. Each is a line of the sweep's note too."""
    today = dt.datetime.now(dt.UTC).date()
    found: list[tuple[Any, str]] = [(e, e.label) for e in policy.exemptions]
    for gid, ctx in s.contexts.items():
        tag = from_tags(ctx.tags, today)
        if tag is not None:
            found.append((tag, f"{gid} {tag.label}"))
    found += [(e, e.label) for e in undone]
    soon = {id(e) for e in expiring([e for e, _ in found], today)}
    out = [
        {"source": e.source, "exemption": label, "expires": e.expires.isoformat()}
        for e, label in found
        if id(e) in soon
    ]
    out.sort(key=lambda x: x["expires"])
    s.lines.extend(f"expiring  {x['expires']} ({x['source']}) {x['exemption']}" for x in out)
    return out


def _product_arn(account: str, region: str) -> str:
    return f"arn:{partition_of(region)}:securityhub:{region}:{account}:product/{account}/default"


def _active_findings(rt: Runtime, account: str) -> dict[str, dict[str, Any]]:
    return {f["Id"]: f for f in rt.securityhub.active_findings(_product_arn(account, rt.settings.region))}


def _settle(s: Sweep, *names: str) -> None:
    """The reads made beside the listing (these, or all), as their answers are needed; a
    failed read raises here and fails the sweep."""
    for name in names or tuple(s.pending):
        future = s.pending.pop(name, None)
        if future is not None:
            setattr(s, name, future.result())


# --- security groups: PER-SG-1..4 and PER-REV-2 ------------------------------------------------


def _models(s: Sweep, rt: Runtime) -> tuple[set[str], list[dict[str, Any]]]:
    """SageMaker models and notebooks through ModelPosture's own evaluation. Returns the
    groups that serve a model (judged as the model tier) and the posture findings; notes the
    groups models and notebooks use."""
    gathered = sweep_models(s.call, rt)
    market = sweep_marketplace(s.call, rt)
    issues = [i for g in (gathered, market) for i in g.issues if i.control_id != "PER-FL-1"]
    judged = judge(merge_issues(issues), rt.policy, principal_arn=None)
    s.details["models"] = gathered.judged + market.judged
    findings = [issue_finding(s.call, j, now=s.now) for j in judged]
    s.lines.extend(_line(j) for j in judged)
    serving = set(gathered.group_chains) | set(market.group_chains)
    s.used_by_models = serving | set(gathered.notes.get("notebook_groups", []))
    s.model_vpcs = set(gathered.vpcs) | set(market.vpcs)
    return serving, findings


def _principals(s: Sweep, rt: Runtime) -> None:
    """PER-IAM-1 on every role, user (with its groups' policies), group and customer managed
    policy, by IamGuard's evaluation."""
    _settle(s, "principals")
    if s.principals is None:
        from perimeter.adapters.iam import IamAdapter

        s.principals = sweep_account(IamAdapter(rt.client("iam")), s.call.account)
    ev, judged_what = s.principals
    for j in judge(merge_issues(ev.issues), rt.policy, principal_arn=None):
        s.findings.append(issue_finding(s.call, j, now=s.now))
        s.lines.append(_line(j))
    s.details["principals"] = judged_what


def _groups(s: Sweep, rt: Runtime, inv: InventoryAdapter, model_groups: set[str]) -> None:
    policy = rt.policy
    stale = _stale(s, inv) if policy.mode("PER-REV-2") != "off" else {}
    stale_judged = {
        gid: judge([stale_issue(s.contexts[gid], rules)], policy, principal_arn=None)
        for gid, rules in stale.items()
    }
    stale_judged = {g: j for g, j in stale_judged.items() if j}
    stale_revoke = {
        gid: stale[gid] for gid, (j,) in stale_judged.items() if j.mode == "enforce" and j.exemption is None
    }
    # A reference to a group that no longer exists cannot be named by content: those few go by
    # id, looked up in one filtered listing per 200 groups before anything is revoked.
    refs = [gid for gid, rules in stale_revoke.items() if any(r.referenced_group_id for r in rules)]
    if refs:
        ids = inv.rule_ids(refs)
        stale_revoke = {
            gid: [r.with_id(ids.get(r.key)) if r.referenced_group_id and not r.rule_id else r for r in rules]
            for gid, rules in stale_revoke.items()
        }
        stale_revoke = {
            g: [r for r in rs if r.rule_id or not r.referenced_group_id] for g, rs in stale_revoke.items()
        }
    # One revoke per offending group (and direction): the SG controls' rules and, in enforce,
    # the stale ones. Revokes start while the remaining groups are still being judged (the
    # evaluation is CPU, the revokes wait on EC2), each after its audit record is written.
    revoker = _Revoker(s, rt, inv)
    decisions: list[GroupDecision] = []
    for gid, ctx in s.contexts.items():
        d = judge_group(as_model_tier(ctx, policy) if gid in model_groups else ctx, policy)
        decisions.append(d)
        wanted = [*d.to_revoke, *stale_revoke.get(gid, ())]
        if wanted:
            revoker.add(d, wanted)
    revoker.flush()
    reported = _reports_while_revoking(s, policy, decisions, revoker.pending)
    removed = revoker.finish()  # raises the first failure, once every revoke has returned
    for d in decisions:  # in the listing's order, whatever order the revokes returned in
        findings, lines, new_item, tag_seen = reported[d.ctx.group_id]
        s.findings.extend(findings)
        s.lines.extend(lines)
        if new_item is not None:
            s.ledger_writes[d.ctx.arn] = new_item
        if tag_seen is not None:
            s.tag_seen[d.ctx.group_id] = tag_seen
    _malformed_tags(s, policy)
    for gid, (j,) in stale_judged.items():
        gone_keys = {r.key for r in removed.get(gid, ())}
        done = bool(gone_keys) and all(r.key in gone_keys for r in stale[gid])
        f = issue_finding(s.call, j, now=s.now)
        if done:
            f = compliant(f, "revoked")
        s.findings.append(f)
        s.lines.append(_line(j, "revoked" if done else None))
    s.details["groups"] = {
        "judged": len(decisions),
        "violating": sum(1 for d in decisions if d.violations),
        "stale": sorted(stale_judged),
        "revoked": {g: [r.rule_id for r in rs] for g, rs in removed.items()},
    }


def _reports_while_revoking(
    s: Sweep, policy: Any, decisions: list[GroupDecision], pending: Mapping[str, Future[tuple[Rule, ...]]]
) -> dict[str, _GroupReport]:
    """While the revokes are in flight: the reports of the groups left alone, then each
    revoked group's as its revoke returns (its findings name the rule ids AWS answered with).
    A failed revoke's group has none: ``_Revoker.finish`` raises its failure."""
    _settle(s, "ledger")
    reported = {
        d.ctx.group_id: _group_report(s, policy, d, ()) for d in decisions if d.ctx.group_id not in pending
    }
    by_gid = {d.ctx.group_id: d for d in decisions}
    waiting = {f: gid for gid, f in pending.items()}
    for future in as_completed(waiting):
        if future.exception() is None:
            gid = waiting[future]
            reported[gid] = _group_report(s, policy, by_gid[gid], future.result())
    return reported


_GroupReport = tuple[list[dict[str, Any]], list[str], dict[str, str] | None, Any]


def _group_report(s: Sweep, policy: Any, d: GroupDecision, gone: tuple[Rule, ...]) -> _GroupReport:
    """A group's findings (one per control it was judged on and violates, or had a finding
    for), their lines, its ledger item when this sweep changes it, and the ledger's first
    times of its PER-EXM-1 finding (a malformed tag); ``gone``: the rules its revoke removed."""
    ledger = s.ledger
    item = ledger.get(d.ctx.arn) if ledger is not None else None
    tag_failing, tag_passing = exempt_tag_split(d.ctx, policy)
    if not d.violations and item is None and not tag_failing:
        return [], [], None, None
    audit_id = _audit_id(s, d.ctx.group_id) if gone else None
    outcome = Outcome(
        d,
        revoked=tuple(r for r in gone if r.key in {v.rule.key for v in d.violations}),
        audit_id=audit_id,
    )
    by_control = d.by_control()
    seen: dict[str, Any] = {}
    new_item = None
    if ledger is not None:
        # The event path's ledger rules (adapters/ledger.py), on the item the sweep read:
        # a finding first seen by an event keeps its first times here, and the next event
        # keeps the sweep's.
        failing = [c for c, vs in by_control.items() if remaining(vs, outcome)] + tag_failing
        passing = [c.id for c in d.controls if c.id not in failing] + tag_passing
        new_item, seen = observed(item, failing, passing, s.now)
    tag_seen = seen[tag_failing[0]] if ledger is not None and tag_failing else None
    findings, lines = [], []
    for control_id, vs in by_control.items():
        f = build_finding(s.call, control_id, vs, outcome, now=s.now, seen=seen.get(control_id))
        findings.append(f)
        lines.append(
            f"{f['Severity']['Label']:<8} {control_id:<9} {f['ProductFields']['perimeter/action']:<9} "
            f"{d.ctx.group_id}: " + "; ".join(v.rule.describe() for v in vs)
        )
    return findings, lines, new_item, tag_seen


def _malformed_tags(s: Sweep, policy: Any) -> None:
    """PER-EXM-1: every group whose perimeter:exempt tag does not parse (it protects nothing)."""
    if policy.mode("PER-EXM-1") == "off":
        return
    for j in judge(exempt_tag_issues(list(s.contexts.values())), policy, principal_arn=None):
        # first times from the findings ledger (the event path keeps the same item)
        s.findings.append(issue_finding(s.call, j, now=s.now, seen=s.tag_seen.get(str(j.issue.group_id))))
        s.lines.append(_line(j))


def _stale(s: Sweep, inv: InventoryAdapter) -> dict[str, list[Rule]]:
    """PER-REV-2: rules naming a group the listing lacks, and what AWS reports stale across
    the peerings of this region's VPCs."""
    our_vpcs = set(s.listing.vpc_facts)  # every VPC has a route table
    from_api = {
        sg.group_id: list(sg.rules) for sg in inv.stale_groups(s.listing.peered_vpcs & our_vpcs) if sg.rules
    }
    stale = merge_stale(dangling_rules(s.listing.groups, account=s.call.account), from_api)
    return {g: r for g, r in stale.items() if g in s.contexts}


class _Revoker:
    """Write-ahead audit records, 25 a BatchWriteItem, and one revoke per group and direction
    as soon as its record is written; a few requests in flight at once (clients are
    thread-safe; the standard retry mode backs off if EC2 throttles).

    Revokes go by the rules' content as the listing read them (no rule-id lookup: a rule
    changed since the read is left alone; see ``InventoryAdapter.revoke``)."""

    def __init__(self, s: Sweep, rt: Runtime, inv: InventoryAdapter) -> None:
        self.s, self.rt, self.inv = s, rt, inv
        self.pool = s.work  # the container's pool: as many revokes in flight as it has threads
        self.batch: list[dict[str, Any]] = []
        self.rules: dict[str, tuple[Rule, ...]] = {}
        self.pending: dict[str, Future[tuple[Rule, ...]]] = {}

    def add(self, d: GroupDecision, wanted: list[Rule]) -> None:
        rules = tuple({r.key: r for r in wanted}.values())
        self.rules[d.ctx.group_id] = rules
        self.batch.append(_audit_record(self.s, d, rules))
        if len(self.batch) == AUDIT_BATCH:
            self.flush()

    def flush(self) -> None:
        """Write the records gathered so far and start their revokes."""
        if not self.batch:
            return
        records, self.batch = self.batch, []
        # The pool's queue is first in, first out: the record batch is running before any of
        # its revokes starts, so a revoke waiting on it never waits on a queued job.
        written = self.pool.submit(self.rt.audit.put_many, records)
        for record in records:
            gid = str(record["group_id"])
            self.pending[gid] = self.pool.submit(self._revoke, written, record, self.rules[gid])

    def _revoke(
        self, written: Future[None], record: dict[str, Any], rules: tuple[Rule, ...]
    ) -> tuple[Rule, ...]:
        written.result()  # never change what is not recorded
        return _revoke(self.inv, self.rt, record, rules)

    def finish(self) -> dict[str, tuple[Rule, ...]]:
        self.flush()
        # Wait for every one before raising the first failure: nothing left running unseen.
        errors = [f.exception() for f in self.pending.values()]
        for err in errors:
            if err is not None:
                raise err
        done = {gid: f.result() for gid, f in self.pending.items()}
        self.s.revoked.update(
            {gid: [r.rule_id or r.describe() for r in rules] for gid, rules in done.items()}
        )
        return done


def _audit_id(s: Sweep, resource: str) -> str:
    return f"{s.call.event_id}#{resource}"


def _audit_record(s: Sweep, d: GroupDecision, rules: tuple[Rule, ...]) -> dict[str, Any]:
    record = build_audit_record(s.call, d, _audit_id(s, d.ctx.group_id), s.now)
    extra = {"PER-REV-2"} if {r.key for r in rules} - {r.key for r in d.to_revoke} else set()
    record["controls"] = sorted(set(record["controls"]) | extra)
    record["rules"] = [r.to_dict() for r in rules]
    record["restore"] = {
        "ingress": [r.to_permission() for r in rules if not r.egress],
        "egress": [r.to_permission() for r in rules if r.egress],
    }
    return record


def _revoke(
    inv: InventoryAdapter, rt: Runtime, record: dict[str, Any], rules: tuple[Rule, ...]
) -> tuple[Rule, ...]:
    result = inv.revoke(str(record["group_id"]), rules)
    if result.already_gone:
        # Someone removed these between our read and our revoke: the record names only what
        # Perimeter removed, so a restore puts back nothing else.
        record["rules"] = [r.to_dict() for r in result.revoked]
        record["restore"] = {
            "ingress": [r.to_permission() for r in result.revoked if not r.egress],
            "egress": [r.to_permission() for r in result.revoked if r.egress],
        }
        rt.audit.put(record)
    return tuple(result.revoked)


# --- default groups, flow logs ----------------------------------------------------------------


def _default_groups(s: Sweep, rt: Runtime) -> None:
    """Default groups with rules or dependants, through DefaultSgGuard's own plan."""
    if all(rt.policy.mode(c) == "off" for c in ("PER-DSG-1", "PER-DSG-2")):
        return
    on_default = {e.vpc_id for e in s.listing.enis if e.default_group_id}
    vpcs = [
        str(ctx.vpc_id)
        for ctx in s.contexts.values()
        if ctx.is_default and ctx.vpc_id and (ctx.current_rules or ctx.vpc_id in on_default)
    ]
    if not vpcs:
        return
    # Read after the SG controls' revokes: the plan sees the default groups as they now are.
    findings, summaries = judge_default_groups(s.call, vpcs, rt)
    s.findings.extend(findings)
    s.details["default_groups"] = summaries
    for f in findings:
        s.lines.append(
            f"{f['Severity']['Label']:<8} {f['GeneratorId']:<9} {f['ProductFields']['perimeter/action']:<9} "
            f"{f['Resources'][0]['Id'].rsplit('/', 1)[-1]}"
        )


def _flow_logs(s: Sweep, rt: Runtime) -> None:
    if rt.policy.mode("PER-FL-1") == "off":
        return
    # The policy's scope (flow_logs.scope), as FlowLogGuard applies it: a VPC outside it is
    # never reported, and its finding is resolved.
    scope = rt.policy.flow_logs
    judged = [v for v in s.listing.vpc_ids if scope.in_scope(v, s.model_vpcs)]
    issues = flow_log_evaluation(s.call, rt, s.listing.vpc_ids, judged=judged).issues
    done = remediate(s.call, judge(issues, rt.policy, principal_arn=None), rt, s.now)
    for j in done:
        s.findings.append(issue_finding(s.call, j, now=s.now))
        s.lines.append(_line(j))
    s.details["flow_logs"] = {"vpcs": len(s.listing.vpc_ids), "without": [j.issue.vpc_id for j in done]}


def _reachability(s: Sweep, rt: Runtime) -> None:
    """PER-NET-1 through NetGuard's own evaluation (a group a model names is the model tier)."""
    if rt.policy.mode("PER-NET-1") == "off":
        return
    from perimeter.network.service import sweep_evaluation

    # after the revokes: a rule the sweep has just removed opens no path
    issues = sweep_evaluation(s.call, rt, s.listing.groups, s.model_groups, s.revoked).issues
    for j in judge(issues, rt.policy, principal_arn=None):
        s.findings.append(issue_finding(s.call, j, now=s.now))
        s.lines.append(_line(j))
    s.details["reachable_enis"] = [i.resource.short_id for i in issues]


def _line(j: Judged, action: str | None = None) -> str:
    i: Issue = j.issue
    return f"{j.severity:<8} {i.control_id:<9} {action or j.action:<9} {i.resource.short_id}: {i.summary}"


# --- PER-REV-1 ---------------------------------------------------------------------------------


def _review_state(rt: Runtime) -> Any:
    if not rt.settings.review_table:
        raise ConfigError("PERIMETER_REVIEW_TABLE is not set: PER-REV-1 needs its first sightings")
    return ReviewStateAdapter(rt.client("dynamodb"), rt.settings.review_table)


def _unused(s: Sweep, rt: Runtime, inv: InventoryAdapter) -> None:
    policy = rt.policy
    listing = s.listing
    _settle(s, "unused_state")
    also = listing.endpoint_groups | listing.template_groups | s.used_by_models
    unused = unused_groups(listing.groups, (g for e in listing.enis for g in e.group_ids), also)
    state = _review_state(rt)
    review = review_unused(
        unused,
        s.unused_state if s.unused_state is not None else state.unused_since(),
        now=s.now,
        grace_days=policy.review.unused_grace_days,
    )
    state.update(review.first_seen, review.cleared)
    raw = {str(g["GroupId"]): g for g in listing.groups}
    issues = [
        unused_issue(
            s.contexts[gid],
            since,
            grace_days=policy.review.unused_grace_days,
            description=str(raw[gid].get("Description", "")),
        )
        for gid, since in review.overdue
    ]
    for j in judge(issues, policy, principal_arn=None):
        gid = str(j.issue.group_id)
        action = None
        if j.mode == "enforce" and j.exemption is None:
            action = _delete(s, rt, inv, raw[gid], s.contexts[gid])
        f = issue_finding(s.call, j, now=s.now)
        if action == "deleted":
            f = compliant(f, "deleted")
            f["Description"] = (
                f"Perimeter deleted {gid}. Undo: perimeter restore {_audit_id(s, gid)}. " + f["Description"]
            )[:1024]
            f["ProductFields"]["perimeter/audit_id"] = _audit_id(s, gid)
        s.findings.append(f)
        s.lines.append(_line(j, action))
    s.details["unused"] = {
        "unused": unused,
        "first_seen_now": sorted(review.first_seen),
        "overdue": [g for g, _ in review.overdue],
        "deleted": s.deleted,
    }


def _delete(s: Sweep, rt: Runtime, inv: InventoryAdapter, raw: Mapping[str, Any], ctx: GroupContext) -> str:
    """Delete an unused group, recorded first with everything ``perimeter restore`` needs."""
    gid = ctx.group_id
    record = {
        "audit_id": _audit_id(s, gid),
        "time": s.now,
        "action": "delete-security-group",
        "event_id": s.call.event_id,
        "event_name": s.call.event_name,
        "actor": s.call.actor.display,
        "account": ctx.account,
        "region": ctx.region,
        "group_id": gid,
        "vpc_id": ctx.vpc_id,
        "controls": ["PER-REV-1"],
        "rules": [r.to_dict() for r in ctx.current_rules],
        "group": {
            "name": raw.get("GroupName"),
            "description": raw.get("Description") or raw.get("GroupName"),
            "vpc_id": ctx.vpc_id,
            "tags": dict(ctx.tags),
        },
        "restore": {
            "ingress": [r.to_permission() for r in ctx.current_rules if not r.egress],
            "egress": [r.to_permission() for r in ctx.current_rules if r.egress],
        },
        "status": "pending",
    }
    rt.audit.put(record)  # write-ahead
    outcome = inv.delete_group(gid)
    record["status"] = outcome
    rt.audit.put(record)
    if outcome == "deleted":
        s.deleted.append(gid)
    return outcome


# --- Security Hub and the message ----------------------------------------------------------------


def _report(s: Sweep, rt: Runtime) -> dict[str, Any]:
    call = s.call
    _settle(s)
    existing = s.existing
    if existing is None:
        existing = _active_findings(rt, call.account)
    raised = [keep_first_sighting(f, existing.get(f["Id"])) for f in s.findings]
    raised_ids = {f["Id"] for f in raised}
    if len(raised_ids) != len(raised):
        dupes = sorted({f["Id"] for f in raised if sum(1 for g in raised if g["Id"] == f["Id"]) > 1})
        raise RuntimeError(f"two findings with one Id in a sweep: {dupes[:5]}")
    known = _known_resources(s)
    resolutions = []
    for f in to_resolve(
        existing.values(), raised_ids, covered(rt.policy), account=call.account, region=call.region
    ):
        short = str(f["Id"]).split("/", 4)[-1]
        why = (
            "the resource no longer exists"
            if short not in known
            else "the resource no longer violates the control"
        )
        resolutions.append(resolved(f, now=s.now, why=why, sweep_id=str(call.event_id)))
    new = [f for f in raised if f["RecordState"] == "ACTIVE" and f["Id"] not in existing]
    changed = [f for f in raised if f["RecordState"] == "ARCHIVED"]
    everything = raised + resolutions
    if rt.policy.dry_run:
        # as on the event path: the finding itself says dry run is why nothing was done
        everything = [mark_dry_run(f) for f in everything]
    record_findings(raised)
    note = None
    if (new or changed or resolutions) and rt.sns is not None:
        lines = [*s.lines, *(_resolved_line(f) for f in resolutions)]
        severity = worst(f["Severity"]["Label"] for f in new + changed) if new or changed else "INFORMATIONAL"
        # SNS takes 256 KB: a sweep of a large account tells the first NOTE_ITEMS of each list
        # and how many there are; Security Hub holds every one.
        if len(lines) > NOTE_ITEMS:
            lines = [
                *lines[:NOTE_ITEMS],
                f"... and {len(lines) - NOTE_ITEMS} more (Security Hub has them all)",
            ]
        note = call_notification(
            call,
            subject=(
                f"[Perimeter] sweep: {len(new)} new, {len(changed)} remediated, {len(resolutions)} resolved"
            ),
            lines=lines,
            details={
                "sweep": True,
                "counts": {"new": len(new), "remediated": len(changed), "resolved": len(resolutions)},
                "new": [f["Id"] for f in new[:NOTE_ITEMS]],
                "remediated": [f["Id"] for f in changed[:NOTE_ITEMS]],
                "resolved": [f["Id"] for f in resolutions[:NOTE_ITEMS]],
            },
            attributes={"control": "SWEEP", "severity": severity, "action": "sweep"},
            findings=raised[:NOTE_ITEMS],
        )
    # Independent writes, together: the finding batches (ids unique across all of them,
    # checked above) and the message.
    writes: list[Callable[[], Any]] = [
        partial(rt.securityhub.import_findings, everything[start : start + FINDINGS_BATCH])
        for start in range(0, len(everything), FINDINGS_BATCH)
    ]
    if note is not None:
        writes.append(partial(rt.sns.publish, note))
    if s.ledger_writes:
        writes.append(partial(rt.ledger.write_many, s.ledger_writes, s.ledger or {}))
    rt.in_parallel(*writes)
    summary = {
        "status": "swept",
        "sweep_id": call.event_id,
        "account": call.account,
        "region": call.region,
        "counts": {
            "security_groups": len(s.listing.groups),
            "network_interfaces": len(s.listing.enis),
            "vpcs": len(set(s.listing.vpc_ids) | set(s.listing.vpc_facts)),
            "findings_raised": len(raised),
            "findings_active": sum(1 for f in raised if f["RecordState"] == "ACTIVE"),
            "findings_new": len(new),
            "findings_resolved": len(resolutions),
            "rules_revoked": sum(len(v) for v in s.revoked.values()),
            "groups_deleted": len(s.deleted),
            "ledger_items_written": len(s.ledger_writes),
        },
        "revoked": s.revoked,
        "deleted": s.deleted,
        "resolved": [f["Id"] for f in resolutions],
        "active": sorted(f["Id"] for f in raised if f["RecordState"] == "ACTIVE"),
        "raised": sorted(raised_ids),
        "lines": s.lines,
        **s.details,
        "notification": note.subject if note else None,
    }
    logger.info("sweep", extra={"summary": {k: v for k, v in summary.items() if k != "lines"}})
    return summary


def _resolved_line(f: Mapping[str, Any]) -> str:
    short = str(f["Id"]).split("/", 4)[-1]
    return f"resolved  {f['GeneratorId']:<9} {short}: {f['ProductFields']['perimeter/resolved_because']}"


def _known_resources(s: Sweep) -> set[str]:
    models = {_short_id(str(m)) for m in s.details.get("models", [])}
    vpcs = set(s.listing.vpc_ids) | set(s.listing.vpc_facts)
    principals = set(s.details.get("principals", []))
    return set(s.contexts) | vpcs | {e.eni_id for e in s.listing.enis} | models | principals


def _short_id(judged: str) -> str:
    """A judged resource's name ("model m1", "Marketplace endpoint e1") as its finding's id
    ends ("model/m1", "marketplace-endpoint/e1")."""
    if judged.startswith("Marketplace endpoint "):
        return "marketplace-endpoint/" + judged.removeprefix("Marketplace endpoint ")
    return judged.replace(" ", "/", 1)
