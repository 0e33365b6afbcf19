"""What Perimeter tells people: ASFF findings, SNS notifications, audit records (pure).

Findings have a deterministic ``Id`` per (control, resource), so every later event about the
same group updates one finding; a remediated group's finding goes to ``PASSED``/``ARCHIVED``
with what was removed and how to undo it, so a reviewer never has to guess.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from perimeter.core.arns import partition_of
from perimeter.core.events import ApiCall
from perimeter.core.rules import Rule
from perimeter.security_groups.evaluate import GroupDecision, Violation

SEVERITY_ORDER = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")


def iso_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def iso_event_time(value: str, fallback: str) -> str:
    """CloudTrail's ``2024-08-01T12:23:55Z``, or Panther's ``2021-01-24 04:55:45.000``."""
    text = value.strip().replace(" ", "T")
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return fallback
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def worst(severities: Iterable[str]) -> str:
    return max(severities, key=SEVERITY_ORDER.index, default="INFORMATIONAL")


def finding_id(control_id: str, account: str, region: str, resource: str) -> str:
    return f"perimeter/{control_id}/{account}/{region}/{resource}"


def audit_id_for(event_id: str | None, group_id: str) -> str:
    return f"{event_id or 'no-event-id'}#{group_id}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one group after acting."""

    decision: GroupDecision
    revoked: tuple[Rule, ...] = ()
    already_gone: tuple[Rule, ...] = ()
    removed_by_us_earlier: tuple[Rule, ...] = ()
    audit_id: str | None = None
    #: content keys of everything removed, built once (a set per lookup made reports quadratic)
    removed_keys: frozenset[Any] = field(default=frozenset(), compare=False)
    #: content keys of the rules someone else removed before our revoke reached them
    gone_keys: frozenset[Any] = field(default=frozenset(), compare=False)

    def __post_init__(self) -> None:
        keys = frozenset(r.key for r in self.revoked + self.removed_by_us_earlier)
        object.__setattr__(self, "removed_keys", keys)
        object.__setattr__(self, "gone_keys", frozenset(r.key for r in self.already_gone))

    def removed(self) -> tuple[Rule, ...]:
        return self.revoked + self.removed_by_us_earlier

    def is_removed(self, rule: Rule) -> bool:
        return bool(self.removed_keys) and rule.key in self.removed_keys


def remaining(violations: Sequence[Violation], outcome: Outcome) -> list[Violation]:
    """The violations still true of the group: present and not removed by us."""
    if not outcome.removed_keys and not outcome.gone_keys:
        return [v for v in violations if v.present]
    return [
        v
        for v in violations
        if v.present and v.rule.key not in outcome.removed_keys and v.rule.key not in outcome.gone_keys
    ]


def action_of(violations: Sequence[Violation], outcome: Outcome) -> str:
    """What the finding says happened to its control on this group: ``revoked`` (every rule
    that violated it is gone thanks to us), ``partly-revoked`` (some removed, some left),
    ``already-compliant`` (no current rule violates it), ``exempt`` (all left are exempt) or
    ``detected``."""
    left = remaining(violations, outcome)
    removed_any = any(outcome.is_removed(v.rule) for v in violations)
    if not left:
        return "revoked" if removed_any else "already-compliant"
    if removed_any:
        return "partly-revoked"
    if all(v.exemption is not None for v in left):
        return "exempt"
    return "detected"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


#: SNS Publish: a subject "must be less than 100 characters long", ASCII, without line breaks
#: or control characters (SNS API reference, Publish).
SNS_SUBJECT_MAX = 99


def sns_subject(text: str) -> str:
    """A subject SNS accepts: printable ASCII on one line, at most ``SNS_SUBJECT_MAX`` characters."""
    flat = "".join(c if " " <= c <= "~" else " " for c in text.replace("\u2026", "..."))
    flat = " ".join(flat.split())
    if len(flat) <= SNS_SUBJECT_MAX:
        return flat
    # Ellipsize at a word boundary: a reader never sees a chopped id or word.
    cut = flat[: SNS_SUBJECT_MAX - 4]
    if " " in cut and not flat[len(cut)].isspace():
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip() + " ..."


def build_finding(
    call: ApiCall,
    control_id: str,
    violations: Sequence[Violation],
    outcome: Outcome,
    *,
    now: str,
    seen: Any = None,
) -> dict[str, Any]:
    """The (control, group) finding: FAILED/ACTIVE while any current rule violates the
    control (every one listed, those below the enforce threshold included), PASSED/ARCHIVED
    once none does. ``seen`` (a ``ledger.Seen``) carries the finding's first times."""
    ctx = outcome.decision.ctx
    control = violations[0].control
    action = action_of(violations, outcome)
    left = remaining(violations, outcome)
    shown = left or list(violations)
    severity = worst(v.severity for v in shown)
    score = max(v.score.value for v in shown)
    lines = []
    removed_keys = set()
    for v in violations:
        gone_now = outcome.is_removed(v.rule)
        if gone_now:
            removed_keys.add(v.rule.key)
        state = "REVOKED" if gone_now else (v.why_not_enforced or "open")
        rid = f" ({v.rule.rule_id})" if v.rule.rule_id else ""
        lines.append(f"- {v.rule.describe()}{rid}: score {v.score.value}, {state}")
    # The revoked copies carry the rule ids (looked up when the record had none).
    removed_ids = [r.rule_id for r in outcome.removed() if r.rule_id and r.key in removed_keys]
    if action == "revoked":
        head = f"Perimeter revoked {len(removed_ids)} rule(s) of {ctx.group_id} that violated {control_id}."
    elif action == "partly-revoked":
        head = (
            f"Perimeter revoked {len(removed_ids)} rule(s) of {ctx.group_id}; {len(left)} rule(s) "
            f"still violate {control_id}. {control.description}"
        )
    elif action == "already-compliant":
        head = f"No rule of {ctx.group_id} violates {control_id} now."
    else:
        head = f"{len(left)} rule(s) of {ctx.group_id} violate {control_id}. {control.description}"
    undo = (
        f' Undo (restore and exempt): the Security Hub action "Perimeter undo", or perimeter restore'
        f" FINDING_ID; restore only: perimeter restore {outcome.audit_id}."
        if removed_ids and outcome.audit_id
        else ""
    )
    description = (
        f"{head} Last change: {call.event_name} by {call.actor.display} ({call.event_id}).\n"
        + "\n".join(lines)
        + undo
    )
    compliant = not left
    workflow = "RESOLVED" if compliant else ("SUPPRESSED" if action == "exempt" else "NEW")
    top = max(shown, key=lambda v: v.score.value)
    fields = {
        "perimeter/score_reasons": _clip("; ".join(top.score.reasons), 2000),
        "perimeter/rules": _clip(", ".join(v.rule.describe() for v in violations), 2000),
        "perimeter/open_rules": _clip(", ".join(v.rule.describe() for v in left), 2000),
        "perimeter/removed_rule_ids": ",".join(removed_ids),
    }
    if outcome.audit_id and removed_ids:
        fields["perimeter/audit_id"] = outcome.audit_id
        fields["perimeter/undo"] = f"perimeter restore {outcome.audit_id}"
    return make_finding(
        call,
        control,
        account=ctx.account,
        region=ctx.region,
        resource=group_resource(ctx),
        severity=severity,
        score=score,
        description=description,
        action=action,
        compliant=compliant,
        workflow=workflow,
        extra_fields=fields,
        now=now,
        created_at=getattr(seen, "created_at", None),
        first_observed_at=getattr(seen, "first_observed_at", None),
    )


def group_resource(ctx: Any) -> FindingResource:
    """A security group as an ASFF resource (GroupName and VpcId when known)."""
    details: dict[str, Any] = {"GroupId": ctx.group_id}
    if ctx.group_name:
        details["GroupName"] = ctx.group_name
    if ctx.vpc_id:
        details["VpcId"] = ctx.vpc_id
    return FindingResource(
        "AwsEc2SecurityGroup", ctx.arn, ctx.group_id, {"AwsEc2SecurityGroup": details}, ctx.tags
    )


def build_passed_finding(
    call: ApiCall, control: Any, ctx: Any, *, now: str, seen: Any = None, deleted: bool = False
) -> dict[str, Any]:
    """The (control, group) finding resolved: no current rule violates the control, or the
    group is gone."""
    why = (
        f"Security group {ctx.group_id} no longer exists (deleted)"
        if deleted
        else f"No rule of {ctx.group_id} violates {control.id} now"
    )
    return make_finding(
        call,
        control,
        account=ctx.account,
        region=ctx.region,
        resource=group_resource(ctx),
        severity="INFORMATIONAL",
        score=0,
        description=f"{why} (seen after {call.event_name} by {call.actor.display}, {call.event_id}).",
        action="group-deleted" if deleted else "already-compliant",
        compliant=True,
        now=now,
        created_at=getattr(seen, "created_at", None),
        first_observed_at=getattr(seen, "first_observed_at", None),
    )


@dataclass(frozen=True, slots=True)
class FindingResource:
    """The ASFF ``Resources[0]`` of a finding: type, ARN, a short id for the title."""

    type: str
    arn: str
    short_id: str
    details: Mapping[str, Any] | None = None
    tags: Mapping[str, str] | None = None


def make_finding(
    call: ApiCall,
    control: Any,
    *,
    resource: FindingResource,
    severity: str,
    score: int,
    description: str,
    action: str,
    compliant: bool,
    workflow: str | None = None,
    extra_fields: Mapping[str, str] | None = None,
    now: str,
    account: str | None = None,
    region: str | None = None,
    created_at: str | None = None,
    first_observed_at: str | None = None,
) -> dict[str, Any]:
    """One ASFF finding, for any control and resource: deterministic ``Id`` per (control,
    resource), ``PASSED``/``ARCHIVED`` once compliant, actor and event in ``ProductFields``.
    ``account`` and ``region`` default to the call's."""
    account = account or call.account
    region = region or call.region
    event_time = iso_event_time(call.event_time, now)
    res: dict[str, Any] = {
        "Type": resource.type,
        "Id": resource.arn,
        "Partition": partition_of(region),
        "Region": region,
    }
    if resource.details:
        res["Details"] = dict(resource.details)
    if resource.tags:
        res["Tags"] = dict(list(resource.tags.items())[:50])
    fields = {
        "perimeter/control": control.id,
        "perimeter/score": str(score),
        "perimeter/action": action,
        "perimeter/actor": call.actor.display,
        "perimeter/event_id": call.event_id or "",
        "perimeter/event_name": call.event_name,
        **(extra_fields or {}),
    }
    return {
        "SchemaVersion": "2018-10-08",
        "Id": finding_id(control.id, account, region, resource.short_id),
        "ProductArn": f"arn:{partition_of(region)}:securityhub:{region}:{account}:product/{account}/default",
        "GeneratorId": control.id,
        "AwsAccountId": account,
        "Types": list(control.types),
        # Kept from the first import when the caller knows them (findings ledger).
        "FirstObservedAt": first_observed_at or event_time,
        "LastObservedAt": max(event_time, first_observed_at or event_time),
        "CreatedAt": created_at or event_time,
        "UpdatedAt": max(now, event_time),
        "Severity": {"Label": severity, "Original": str(score)},
        "Title": _clip(f"{control.id} {control.title}: {resource.short_id}", 256),
        "Description": _clip(description, 1024),
        "Remediation": {
            "Recommendation": {"Text": _clip(control.remediation, 512), "Url": control.remediation_url}
        },
        "ProductFields": {k: v for k, v in fields.items() if v},
        "Resources": [res],
        "Compliance": {"Status": "PASSED" if compliant else "FAILED"},
        "Workflow": {"Status": workflow or ("RESOLVED" if compliant else "NEW")},
        "RecordState": "ARCHIVED" if compliant else "ACTIVE",
    }


@dataclass(frozen=True, slots=True)
class Notification:
    subject: str
    text: str
    body: Mapping[str, Any]
    attributes: Mapping[str, str] = field(default_factory=dict)


def call_notification(
    call: ApiCall,
    *,
    subject: str,
    lines: Sequence[str],
    details: Mapping[str, Any],
    attributes: Mapping[str, str],
    findings: Sequence[Mapping[str, Any]],
    undo: Sequence[str] = (),
) -> Notification:
    """The message every function sends about one event: who did what where, one line per
    decision, how to undo, and the same as JSON (``details`` plus the finding ids)."""
    text = (
        f"{call.event_name} by {call.actor.display} in {call.account}/{call.region} "
        f"(event {call.event_id}).\n\n" + "\n".join(lines)
    )
    if undo:
        text += (
            '\n\nUndo (restore and exempt): the Security Hub action "Perimeter undo" on a finding, or '
            "perimeter restore FINDING_ID. Restore only: " + " ; ".join(undo)
        )
    body = {
        "event_id": call.event_id,
        "event_name": call.event_name,
        "actor": call.actor.display,
        "account": call.account,
        "region": call.region,
        **details,
        "finding_ids": [f["Id"] for f in findings],
    }
    return Notification(subject=sns_subject(subject), text=text, body=body, attributes=dict(attributes))


def build_notification(
    call: ApiCall, outcomes: Sequence[Outcome], findings: Sequence[Mapping[str, Any]]
) -> Notification:
    decisions = []
    lines = []
    for outcome in outcomes:
        for control_id, vs in outcome.decision.by_control().items():
            action = action_of(vs, outcome)
            severity = worst(v.severity for v in vs)
            decisions.append(
                {
                    "control": control_id,
                    "group_id": outcome.decision.ctx.group_id,
                    "severity": severity,
                    "score": max(v.score.value for v in vs),
                    "action": action,
                    "rules": [v.rule.describe() for v in vs],
                    "rule_ids": [v.rule.rule_id for v in vs if v.rule.rule_id],
                    "audit_id": outcome.audit_id if action == "revoked" else None,
                }
            )
            lines.append(
                f"{severity:<8} {control_id:<9} {action:<17} {outcome.decision.ctx.group_id}: "
                + "; ".join(v.rule.describe() for v in vs)
            )
    top = max(decisions, key=lambda d: (SEVERITY_ORDER.index(d["severity"]), d["score"]))
    actions = sorted({d["action"] for d in decisions})
    # SNS refuses subjects over 100 characters; group ids are short but findings for other
    # resources (ARNs) need not be.
    undo = [f"perimeter restore {o.audit_id}" for o in outcomes if o.audit_id and o.removed()]
    return call_notification(
        call,
        subject=f"[Perimeter] {top['severity']} {top['control']} {top['action']} on {top['group_id']}",
        lines=lines,
        details={"decisions": decisions},
        attributes={"control": top["control"], "severity": top["severity"], "action": ",".join(actions)},
        findings=findings,
        undo=undo,
    )


def build_audit_record(call: ApiCall, decision: GroupDecision, audit_id: str, now: str) -> dict[str, Any]:
    rules = decision.to_revoke
    return {
        "audit_id": audit_id,
        "time": now,
        "action": "revoke-security-group-rules",
        "event_id": call.event_id,
        "event_name": call.event_name,
        "actor": call.actor.display,
        "account": decision.ctx.account,
        "region": decision.ctx.region,
        "group_id": decision.ctx.group_id,
        "vpc_id": decision.ctx.vpc_id,
        "controls": sorted({v.control.id for v in decision.violations if v.enforce}),
        "rules": [r.to_dict() for r in rules],
        "restore": {
            "ingress": [r.to_permission() for r in rules if not r.egress],
            "egress": [r.to_permission() for r in rules if r.egress],
        },
    }
