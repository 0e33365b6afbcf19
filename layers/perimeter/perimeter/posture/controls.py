"""Posture controls of model deployments (practices 4-7) and how their findings are told (pure).

The security-group controls judge one rule at a time; the controls here judge a resource's
configuration (a model outside a VPC, a VPC without a flow log, an invoke policy on ``*``,
no guardrail). They share one shape: an ``Issue`` names the control, the resource, the chain
of resources that led to it (endpoint -> config -> model -> SG), a score with its reasons and
the precise fix. ``issue_finding`` turns an issue into ASFF through ``report.make_finding``
so its ``Id`` is deterministic per (control, resource), like every other Perimeter finding.

Policy snippet (``policy/default.yaml``)::

    controls:
      PER-VPC-1: {mode: detect}
      PER-FL-1: {mode: enforce}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from perimeter.core.controls import REGISTRY, Control, register
from perimeter.core.events import ApiCall
from perimeter.core.report import (
    SEVERITY_ORDER,
    FindingResource,
    Notification,
    call_notification,
    make_finding,
    worst,
)
from perimeter.policy import Policy


def _no_rule_matches(*_: Any) -> bool:
    """Posture controls judge configurations, not security-group rules: the security-group
    evaluation skips them."""
    return False


_NET = "Software and Configuration Checks/AWS Security Best Practices/Network Reachability"
_IAM = "Software and Configuration Checks/AWS Security Best Practices/IAM Permissions"
_LOG = "Software and Configuration Checks/AWS Security Best Practices/Logging"

VPC_1 = register(
    Control(
        id="PER-VPC-1",
        practice=5,
        title="Model outside a VPC or with direct internet access",
        description=(
            "A SageMaker model, notebook or Bedrock Marketplace endpoint runs outside your VPC "
            "(SageMaker's own network, reachable to and from the internet) or with direct "
            "internet access, so no security group, flow log or VPC endpoint policy applies."
        ),
        remediation=(
            "Recreate the model with VpcConfig (private subnets, a model-tier security group) "
            "and notebooks with DirectInternetAccess=Disabled and a SubnetId."
        ),
        types=(_NET,),
        permissions=(),
        matches=_no_rule_matches,
        remediation_url="https://docs.aws.amazon.com/sagemaker/latest/dg/host-vpc.html",
    )
)
VPC_2 = register(
    Control(
        id="PER-VPC-2",
        practice=5,
        title="Model without network isolation or without PrivateLink to the runtime APIs",
        description=(
            "A model container can make outbound calls (EnableNetworkIsolation is false), or "
            "the model's VPC has no interface endpoint for the runtime API, so invocations "
            "leave the VPC."
        ),
        remediation=(
            "Set EnableNetworkIsolation=true on the model and create interface VPC endpoints "
            "for sagemaker.runtime / bedrock-runtime in the model's VPC."
        ),
        types=(_NET,),
        permissions=(),
        matches=_no_rule_matches,
        remediation_url="https://docs.aws.amazon.com/sagemaker/latest/dg/interface-vpc-endpoint.html",
    )
)
IAM_1 = register(
    Control(
        id="PER-IAM-1",
        practice=4,
        title="Model invoke permission on every resource, or admin on a model execution role",
        description=(
            "An IAM policy grants sagemaker:InvokeEndpoint, bedrock:InvokeModel* or "
            "bedrock:Converse* on all resources or to a wildcard principal, or an "
            "administrator policy is attached to a model execution role."
        ),
        remediation=(
            "Name the endpoint or model ARNs in Resource, require bedrock:GuardrailIdentifier "
            "for Bedrock invocations, trust only named principals, and give execution roles "
            "only the S3/ECR/Logs access the model needs."
        ),
        types=(_IAM,),
        permissions=(),
        matches=_no_rule_matches,
        remediation_url="https://docs.aws.amazon.com/bedrock/latest/userguide/security_iam_id-based-policy-examples.html",
    )
)
GR_1 = register(
    Control(
        id="PER-GR-1",
        practice=6,
        title="No guardrail with a HIGH prompt-attack filter where Bedrock serves a model",
        description=(
            "Bedrock serves a model in this account but no guardrail with a HIGH prompt-attack "
            "input filter exists, or a guardrail was deleted or weakened."
        ),
        remediation=(
            "Create (or restore) a guardrail with the PROMPT_ATTACK filter at inputStrength "
            "HIGH, publish a version, and require it: account-level enforced guardrail "
            "configuration or a bedrock:GuardrailIdentifier condition on invoke policies."
        ),
        types=("Software and Configuration Checks/AWS Security Best Practices",),
        permissions=(),
        matches=_no_rule_matches,
        remediation_url="https://docs.aws.amazon.com/bedrock/latest/userguide/guardrails.html",
    )
)
EXM_1 = register(
    Control(
        id="PER-EXM-1",
        practice=8,
        title="Malformed perimeter:exempt tag",
        description=(
            "A resource carries the tag perimeter:exempt with a value that does not parse, so it "
            "exempts nothing: Perimeter keeps enforcing on it."
        ),
        remediation=(
            "Write the tag as '<controls> until=YYYY-MM-DD reason=<text>' (controls '+'-joined, or "
            "'all'; until at most a year ahead; only letters, digits, spaces and + - = . _ : / @), "
            "or remove it."
        ),
        types=("Software and Configuration Checks/AWS Security Best Practices",),
        permissions=(),
        matches=_no_rule_matches,
        remediation_url="https://docs.aws.amazon.com/tag-editor/latest/userguide/best-practices-and-strats.html",
    )
)


def exempt_tag_issues(ctxs: Sequence[Any], today: Any = None) -> list[Issue]:
    """PER-EXM-1 for every group whose ``perimeter:exempt`` tag does not parse."""
    import datetime as dt

    from perimeter.core.exemptions import TAG_KEY, tag_problem

    day = today or dt.datetime.now(dt.UTC).date()
    out = []
    for ctx in ctxs:
        problem = tag_problem(ctx.group_id, ctx.tags, day)
        if problem is None:
            continue
        details: dict[str, Any] = {"GroupId": ctx.group_id}
        if ctx.vpc_id:
            details["VpcId"] = ctx.vpc_id
        out.append(
            Issue(
                control_id="PER-EXM-1",
                resource=FindingResource(
                    "AwsEc2SecurityGroup", ctx.arn, ctx.group_id, {"AwsEc2SecurityGroup": details}, ctx.tags
                ),
                score=40,
                reasons=(f"tag {TAG_KEY} does not parse: {problem.problem}",),
                summary=(
                    f"The tag {TAG_KEY}={problem.value!r} on {ctx.group_id} does not parse "
                    f"({problem.problem}): it exempts nothing."
                ),
                chain=(ctx.group_id,),
                fix=EXM_1.remediation,
                evidence={"perimeter/tag_value": problem.value},
                vpc_id=ctx.vpc_id,
                group_id=ctx.group_id,
            )
        )
    return out


FL_1 = register(
    Control(
        id="PER-FL-1",
        practice=7,
        title="VPC without an active flow log of all traffic",
        description=(
            "A VPC (new, serving a model, or whose flow log was deleted) has no active flow log "
            "capturing ALL traffic, so connections to and from the model leave no record."
        ),
        remediation=(
            "Create a flow log: TrafficType ALL, a log group with explicit retention, a custom "
            "format with flow-direction, pkt-srcaddr, pkt-dstaddr and traffic-path."
        ),
        types=(_LOG,),
        permissions=(
            "ec2:CreateFlowLogs",
            "iam:PassRole",
            "logs:CreateLogGroup",
            "logs:PutRetentionPolicy",
        ),
        matches=_no_rule_matches,
        remediation_url="https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs.html",
    )
)

# Issue 3 (default security groups) also reports PER-TIER-1, for ENIs: whoever is imported
# first registers it, the other reuses the registered object (``register`` refuses twins).
TIER_1 = REGISTRY.get("PER-TIER-1") or register(
    Control(
        id="PER-TIER-1",
        practice=1,
        title="Model-tier security group shared with another tier",
        description=(
            "The security group that serves a model also belongs to another tier (a database, "
            "cache or app group, or an ENI of another tier), so whatever may reach one may "
            "reach the other."
        ),
        remediation=(
            "Give the model its own model-tier security group and let the app tier reach it "
            "by security-group reference."
        ),
        types=(_NET,),
        permissions=(),
        matches=_no_rule_matches,
    )
)


@dataclass(frozen=True, slots=True)
class Issue:
    """One posture problem on one resource."""

    control_id: str
    resource: FindingResource
    score: int
    reasons: tuple[str, ...]
    #: what is wrong, one sentence naming the resource
    summary: str
    #: the resources that led here, outermost first: ("endpoint e", "config c", "model m", "sg-1")
    chain: tuple[str, ...]
    #: the precise fix for this resource
    fix: str
    #: extra ProductFields (the quoted statement, what changed)
    evidence: Mapping[str, str] = field(default_factory=dict)
    #: for exemptions: the VPC / security group / tags the resource sits in
    vpc_id: str | None = None
    group_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def chain_text(self) -> str:
        return " -> ".join(self.chain)


@dataclass(frozen=True, slots=True)
class Judged:
    """An issue with the policy applied: its mode, exemption and what was done about it."""

    issue: Issue
    mode: str
    severity: str
    exemption: str | None = None
    #: "detected", "exempt", "created" (remediated), "already-compliant"
    action: str = "detected"
    remediation_detail: str | None = None
    #: the audit record of what was done (``perimeter/audit_id``: the undo starts from it)
    audit_id: str | None = None


def judge(issues: Sequence[Issue], policy: Policy, *, principal_arn: str | None) -> list[Judged]:
    """Apply modes and exemptions; controls switched off drop out."""
    out: list[Judged] = []
    for issue in issues:
        mode = policy.mode(issue.control_id)
        if mode == "off":
            continue
        ex = policy.exemption_for(
            issue.control_id,
            group_id=issue.group_id,
            vpc_id=issue.vpc_id,
            tags=issue.tags,
            principal_arn=principal_arn,
        )
        out.append(
            Judged(
                issue=issue,
                mode=mode,
                severity=policy.thresholds.severity_of(issue.score),
                exemption=ex.label if ex else None,
                action="exempt" if ex else "detected",
            )
        )
    return out


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def exempt_tag_split(ctx: Any, policy: Policy, today: Any = None) -> tuple[list[str], list[str]]:
    """PER-EXM-1's part of a group's findings-ledger observation, as ``(failing, passing)``:
    failing while its ``perimeter:exempt`` tag does not parse, passing otherwise (a tag fixed or
    removed resolves the finding, like a rule fixed); nothing for a gone group or a control off."""
    import datetime as dt

    from perimeter.core.exemptions import tag_problem

    if policy.mode(EXM_1.id) == "off" or not getattr(ctx, "exists", True):
        return [], []
    day = today or dt.datetime.now(dt.UTC).date()
    if tag_problem(ctx.group_id, ctx.tags, day) is None:
        return [], [EXM_1.id]
    return [EXM_1.id], []


def exempt_tag_passed(
    call: ApiCall, ctx: Any, *, now: str, seen: Any = None, deleted: bool = False
) -> dict[str, Any]:
    """The PER-EXM-1 finding of a group resolved: its tag parses now, is gone, or the group is."""
    from perimeter.core.exemptions import TAG_KEY
    from perimeter.core.report import build_passed_finding

    finding = build_passed_finding(call, EXM_1, ctx, now=now, seen=seen, deleted=deleted)
    if not deleted:
        finding["Description"] = _clip(
            f"The tag {TAG_KEY} on {ctx.group_id} parses now, or is gone (seen after {call.event_name} "
            f"by {call.actor.display}, {call.event_id}).",
            1024,
        )
    return finding


def issue_finding(call: ApiCall, judged: Judged, *, now: str, seen: Any = None) -> dict[str, Any]:
    """The finding of a judged issue; ``seen`` (a ``ledger.Seen``) carries its first times."""
    issue = judged.issue
    control = REGISTRY[issue.control_id]
    lines = [issue.summary]
    if issue.chain:
        lines.append(f"Chain: {issue.chain_text}.")
    if judged.remediation_detail:
        lines.append(judged.remediation_detail)
    elif judged.exemption:
        lines.append(f"Exempt: {judged.exemption}.")
    lines.append(f"Fix: {issue.fix}")
    lines.append(f"Seen in {call.event_name} by {call.actor.display} ({call.event_id}).")
    compliant = judged.action in ("created", "already-compliant")
    fields = {
        "perimeter/chain": _clip(issue.chain_text, 2000),
        "perimeter/score_reasons": _clip("; ".join(issue.reasons), 2000),
        **{k: _clip(v, 2000) for k, v in issue.evidence.items()},
    }
    if judged.remediation_detail:
        fields["perimeter/remediation"] = _clip(judged.remediation_detail, 2000)
    if judged.audit_id:
        fields["perimeter/audit_id"] = judged.audit_id
    finding = make_finding(
        call,
        control,
        resource=issue.resource,
        severity=judged.severity,
        score=issue.score,
        description="\n".join(lines),
        action=judged.action,
        compliant=compliant,
        workflow="SUPPRESSED" if judged.action == "exempt" else None,
        extra_fields=fields,
        now=now,
        created_at=getattr(seen, "created_at", None),
        first_observed_at=getattr(seen, "first_observed_at", None),
    )
    finding["Remediation"]["Recommendation"]["Text"] = _clip(issue.fix, 512)
    return finding


def issues_notification(
    call: ApiCall, judged: Sequence[Judged], findings: Sequence[Mapping[str, Any]]
) -> Notification:
    """One message for every issue one event raised, worst first."""
    ordered = sorted(judged, key=lambda j: (SEVERITY_ORDER.index(j.severity), j.issue.score), reverse=True)
    top = ordered[0]
    lines = []
    decisions = []
    for j in ordered:
        i = j.issue
        lines.append(f"{j.severity:<8} {i.control_id:<10} {j.action:<10} {i.resource.short_id}: {i.summary}")
        if i.chain:
            lines.append(f"{'':<30}chain: {i.chain_text}")
        lines.append(f"{'':<30}fix: {i.fix}")
        decisions.append(
            {
                "control": i.control_id,
                "resource": i.resource.arn,
                "chain": list(i.chain),
                "severity": j.severity,
                "score": i.score,
                "action": j.action,
                "summary": i.summary,
                "fix": i.fix,
            }
        )
    subject = (
        f"[Perimeter] {worst(j.severity for j in judged)} {top.issue.control_id} {top.action} "
        f"on {top.issue.resource.short_id}"
    )
    if len(judged) > 1:
        subject += f" (+{len(judged) - 1} more)"
    return call_notification(
        call,
        subject=subject,
        lines=lines,
        details={"decisions": decisions},
        attributes={
            "control": top.issue.control_id,
            "severity": top.severity,
            "action": ",".join(sorted({j.action for j in judged})),
        },
        findings=findings,
    )


def summary_of(judged: Judged) -> dict[str, Any]:
    i = judged.issue
    return {
        "control": i.control_id,
        "resource": i.resource.short_id,
        "chain": i.chain_text,
        "severity": judged.severity,
        "score": i.score,
        "action": judged.action,
        "summary": i.summary,
        "fix": i.fix,
        **({"remediation": judged.remediation_detail} if judged.remediation_detail else {}),
    }


def arn_resource(
    kind: str, arn: str, short_id: str, details: Mapping[str, Any] | None = None
) -> FindingResource:
    """An ASFF resource for the posture controls (``AwsSageMaker...`` types where ASFF has none
    of its own use ``Other``)."""
    return FindingResource(
        kind,
        arn,
        short_id,
        {"Other": {k: str(v)[:1024] for k, v in (details or {}).items()}} if details else None,
    )


# --- one evaluation per resource: every problem, and what it found clean -------------------


@dataclass(frozen=True, slots=True)
class Clean:
    """A (control, resource) pair that was judged on its whole current state and has no
    problem: its finding, if one is active, is resolved (``why`` says how we know)."""

    control_id: str
    resource: FindingResource
    why: str


@dataclass
class Evaluation:
    """What judging some resources' whole current state found.

    ``issues`` are the problems; ``covered`` are the (control, resource) pairs that were
    judged, problems or not. A covered pair without an issue is clean, so the event path and
    the sweep can both resolve its finding with the same result."""

    issues: list[Issue] = field(default_factory=list)
    covered: list[Clean] = field(default_factory=list)

    def cover(self, control_id: str, resource: FindingResource, why: str) -> None:
        self.covered.append(Clean(control_id, resource, why))

    def extend(self, other: Evaluation) -> None:
        self.issues.extend(other.issues)
        self.covered.extend(other.covered)

    def clean(self) -> list[Clean]:
        failing = {(i.control_id, i.resource.short_id) for i in self.issues}
        out: dict[tuple[str, str], Clean] = {}
        for c in self.covered:
            key = (c.control_id, c.resource.short_id)
            if key not in failing:
                out.setdefault(key, c)
        return list(out.values())


def merge_issues(issues: Sequence[Issue]) -> list[Issue]:
    """One issue per (control, resource), naming every problem: a finding's ``Id`` is per
    (control, resource), so two issues for one pair would be two findings with one ``Id``
    (Security Hub keeps one and loses the rest)."""
    groups: dict[tuple[str, str], list[Issue]] = {}
    for issue in issues:
        groups.setdefault((issue.control_id, issue.resource.short_id), []).append(issue)
    out = []
    for group in groups.values():
        if len(group) == 1:
            out.append(group[0])
            continue
        first = group[0]
        evidence: dict[str, str] = {}
        for i in group:
            for k, v in i.evidence.items():
                evidence[k] = f"{evidence[k]}\n{v}" if k in evidence and v not in evidence[k] else v
        out.append(
            Issue(
                control_id=first.control_id,
                resource=first.resource,
                score=max(i.score for i in group),
                reasons=tuple(dict.fromkeys(r for i in group for r in i.reasons)),
                summary=f"{len(group)} problems: "
                + " ".join(f"({n}) {i.summary}" for n, i in enumerate(group, 1)),
                chain=first.chain,
                fix=" ".join(dict.fromkeys(i.fix for i in group)),
                evidence=evidence,
                vpc_id=first.vpc_id,
                group_id=first.group_id,
                tags=first.tags,
            )
        )
    return out


#: The ASFF fields Perimeter writes (GetFindings returns more, set by Security Hub itself).
OWN_FIELDS = (
    "SchemaVersion",
    "Id",
    "ProductArn",
    "GeneratorId",
    "AwsAccountId",
    "Types",
    "FirstObservedAt",
    "CreatedAt",
    "Severity",
    "Title",
    "Remediation",
    "Resources",
)


def keep_first_seen(finding: dict[str, Any], existing: Mapping[str, Any] | None) -> dict[str, Any]:
    """An update keeps when the problem was first seen and when the finding was created."""
    if not existing:
        return finding
    out = dict(finding)
    for key in ("FirstObservedAt", "CreatedAt"):
        if existing.get(key):
            out[key] = existing[key]
    out["UpdatedAt"] = max(str(finding["UpdatedAt"]), str(existing.get("UpdatedAt", "")))
    return out


def resolved_finding(
    existing: Mapping[str, Any], call: ApiCall, *, why: str, now: str, event_time: str
) -> dict[str, Any]:
    """The stored finding, PASSED/ARCHIVED: the resource no longer has the problem, or is gone."""
    out: dict[str, Any] = {k: existing[k] for k in OWN_FIELDS if k in existing}
    before = str(existing.get("Description", ""))
    out["Description"] = _clip(
        f"Resolved: {why} Seen in {call.event_name} by {call.actor.display} ({call.event_id}).\n"
        f"Was: {before}",
        1024,
    )
    fields = {k: v for k, v in (existing.get("ProductFields") or {}).items() if k.startswith("perimeter/")}
    fields.update(
        {
            "perimeter/action": "resolved",
            "perimeter/resolved_because": _clip(why, 2000),
            "perimeter/actor": call.actor.display,
            "perimeter/event_id": call.event_id or "",
            "perimeter/event_name": call.event_name,
        }
    )
    out["ProductFields"] = {k: v for k, v in fields.items() if v}
    out["LastObservedAt"] = max(event_time, str(existing.get("LastObservedAt", "")))
    out["UpdatedAt"] = max(now, event_time, str(existing.get("UpdatedAt", "")))
    out["Compliance"] = {"Status": "PASSED"}
    out["Workflow"] = {"Status": "RESOLVED"}
    out["RecordState"] = "ARCHIVED"
    return out


def is_active(finding: Mapping[str, Any] | None) -> bool:
    return bool(finding) and finding.get("RecordState") != "ARCHIVED"  # type: ignore[union-attr]
