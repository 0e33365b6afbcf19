"""What the sweep decides on its own (pure): unused groups, stale rules, findings to resolve.

Everything else the sweep judges goes through the event path's evaluations (``judge_group``
is the single call site of the security-group evaluation), so the two ways in can never
disagree. PER-REV-1 and PER-REV-2 are registered here, beside the code that decides them.

Policy snippet::

    controls:
      PER-REV-1: {mode: detect}   # enforce deletes the group (audited, restorable)
      PER-REV-2: {mode: detect}   # enforce revokes the stale rules, by rule id
    review:
      unused_grace_days: 30
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from perimeter.core.arns import ec2_arn
from perimeter.core.controls import Control, register
from perimeter.core.rules import Rule, rules_from_permission
from perimeter.policy import Policy
from perimeter.posture.controls import OWN_FIELDS, Issue, arn_resource
from perimeter.security_groups.changes import GroupChange
from perimeter.security_groups.context import GroupContext
from perimeter.security_groups.evaluate import GroupDecision, decide


def _never(*_: Any) -> bool:
    return False


_REVIEW_TYPES = ("Software and Configuration Checks/AWS Security Best Practices",)
REV1 = register(
    Control(
        id="PER-REV-1",
        practice=8,
        title="Security group unused for longer than the grace period",
        description=(
            "No network interface, no other group's rule, no launch template and no VPC endpoint "
            "uses this group, and it has been so for longer than the policy's grace period. "
            "Unused groups are where forgotten openings wait to be reused."
        ),
        remediation="Delete the group, or tag and document why it must stay (policy exemption).",
        types=_REVIEW_TYPES,
        permissions=("ec2:DeleteSecurityGroup",),
        matches=_never,
    )
)
REV2 = register(
    Control(
        id="PER-REV-2",
        practice=8,
        title="Security-group rule references a deleted group or a dead peering",
        description=(
            "A rule names a security group that no longer exists, or one across a VPC peering "
            "connection that is deleted or inactive. The rule grants nothing today and grants "
            "again if the id or the peering comes back."
        ),
        remediation="Revoke the stale rule; reference a group that exists in a live peering.",
        types=_REVIEW_TYPES,
        permissions=("ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress"),
        matches=_never,
    )
)


def judge_group(ctx: GroupContext, policy: Policy) -> GroupDecision:
    """The event path's security-group evaluation of the group's whole current state.

    The one place the sweep calls it: when the evaluation's entry point changes, only this
    line does."""
    return decide(GroupChange(ctx.group_id, (), whole_group=True), ctx, policy)


# --- PER-REV-1: unused groups ----------------------------------------------------------------


def referenced_groups(groups: Iterable[Mapping[str, Any]]) -> set[str]:
    """Groups named by another group's rule (a self-reference does not make a group used)."""
    out: set[str] = set()
    for g in groups:
        for key in ("IpPermissions", "IpPermissionsEgress"):
            for perm in g.get(key, []) or []:
                for pair in perm.get("UserIdGroupPairs", []) or []:
                    ref = pair.get("GroupId")
                    if ref and ref != g.get("GroupId"):
                        out.add(str(ref))
    return out


def unused_groups(
    groups: Sequence[Mapping[str, Any]],
    eni_groups: Iterable[str],
    also_used: Iterable[str] = (),
) -> list[str]:
    """Groups nothing uses: on no ENI, named by no other group's rule, nor by anything in
    ``also_used`` (launch templates, VPC endpoints). Default groups never count (AWS keeps
    them for the VPC's life)."""
    used = set(eni_groups) | referenced_groups(groups) | set(also_used)
    return [
        str(g["GroupId"]) for g in groups if g.get("GroupName") != "default" and str(g["GroupId"]) not in used
    ]


@dataclass(frozen=True, slots=True)
class UnusedReview:
    #: first sighting of groups seen unused for the first time now
    first_seen: Mapping[str, str]
    #: groups in the state that are used (or gone) again
    cleared: tuple[str, ...]
    #: (group, unused since) past the grace period
    overdue: tuple[tuple[str, str], ...]


def _parse(ts: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def review_unused(
    unused: Iterable[str], state: Mapping[str, str], *, now: str, grace_days: int
) -> UnusedReview:
    """Compare today's unused groups with the first sightings kept from earlier sweeps."""
    now_dt = _parse(now)
    current = set(unused)
    first = {g: now for g in sorted(current) if g not in state}
    cleared = tuple(sorted(g for g in state if g not in current))
    overdue = []
    for g in sorted(current):
        since = state.get(g, now)
        if now_dt - _parse(since) >= dt.timedelta(days=grace_days):
            overdue.append((g, since))
    return UnusedReview(first, cleared, tuple(overdue))


def unused_issue(ctx: GroupContext, since: str, *, grace_days: int, description: str = "") -> Issue:
    days = (dt.datetime.now(dt.UTC) - _parse(since)).days
    what = f"{ctx.group_id} ({ctx.group_name})" if ctx.group_name else ctx.group_id
    return Issue(
        control_id=REV1.id,
        resource=arn_resource(
            "AwsEc2SecurityGroup",
            ctx.arn,
            ctx.group_id,
            {"GroupId": ctx.group_id, "GroupName": ctx.group_name or "", "VpcId": ctx.vpc_id or ""},
        ),
        score=20,
        reasons=(f"unused since {since} ({days} day(s); grace {grace_days}) (+20)",),
        summary=(
            f"Security group {what} in {ctx.vpc_id or 'EC2-Classic'} has been used by nothing "
            f"since {since} ({len(ctx.current_rules)} rule(s)"
            + (f"; {description}" if description else "")
            + ")."
        ),
        chain=(f"security group {ctx.group_id}",),
        fix=f"aws ec2 delete-security-group --group-id {ctx.group_id}",
        evidence={"perimeter/unused_since": since},
        vpc_id=ctx.vpc_id,
        group_id=ctx.group_id,
        tags=dict(ctx.tags),
    )


# --- PER-REV-2: stale rules -------------------------------------------------------------------


def dangling_rules(
    groups: Sequence[Mapping[str, Any]], *, account: str, known: Iterable[str] | None = None
) -> dict[str, list[Rule]]:
    """Rules naming a group of this account that the region's listing no longer has (moto and
    older accounts allow it; across a peering, DescribeStaleSecurityGroups reports the rest).
    Groups of other accounts cannot be checked from here and are left alone."""
    ids = set(known) if known is not None else {str(g["GroupId"]) for g in groups}
    out: dict[str, list[Rule]] = {}
    for g in groups:
        gid = str(g["GroupId"])
        for key, egress in (("IpPermissions", False), ("IpPermissionsEgress", True)):
            for perm in g.get(key, []) or []:
                for pair in perm.get("UserIdGroupPairs", []) or []:
                    ref = pair.get("GroupId")
                    owner = pair.get("UserId")
                    if not ref or ref in ids or (owner and str(owner) != account):
                        continue
                    if pair.get("VpcPeeringConnectionId"):
                        continue  # across a peering: the stale-groups API is the authority
                    single = {
                        **perm,
                        "IpRanges": [],
                        "Ipv6Ranges": [],
                        "PrefixListIds": [],
                        "UserIdGroupPairs": [pair],
                    }
                    out.setdefault(gid, []).extend(rules_from_permission(gid, egress, single))
    return out


def merge_stale(*sources: Mapping[str, Sequence[Rule]]) -> dict[str, list[Rule]]:
    out: dict[str, dict[Any, Rule]] = {}
    for src in sources:
        for gid, rules in src.items():
            for r in rules:
                out.setdefault(gid, {}).setdefault(r.key, r)
    return {gid: list(rs.values()) for gid, rs in out.items()}


def stale_issue(ctx: GroupContext, rules: Sequence[Rule]) -> Issue:
    listed = "; ".join(r.describe() for r in rules)
    return Issue(
        control_id=REV2.id,
        resource=arn_resource(
            "AwsEc2SecurityGroup", ctx.arn, ctx.group_id, {"GroupId": ctx.group_id, "VpcId": ctx.vpc_id or ""}
        ),
        score=30,
        reasons=(f"{len(rules)} rule(s) name a group that is gone or unreachable (+30)",),
        summary=f"{ctx.group_id} has stale rule(s): {listed}.",
        chain=(f"security group {ctx.group_id}",),
        fix=(
            f"aws ec2 revoke-security-group-ingress --group-id {ctx.group_id} "
            "--security-group-rule-ids <the stale rules' ids> (egress likewise)"
        ),
        evidence={"perimeter/stale_rules": listed[:2000]},
        vpc_id=ctx.vpc_id,
        group_id=ctx.group_id,
        tags=dict(ctx.tags),
    )


# --- reconciling Security Hub --------------------------------------------------------------------


def covered(policy: Policy) -> frozenset[tuple[str, str]]:
    """(control, resource kind) pairs the sweep judges for every resource of the region: an
    active finding of one of these that the sweep did not raise again is resolved. Left out,
    because the sweep does not judge every resource they apply to: PER-GR-1, PER-SG-5,
    PER-TIER-1 and the VPCs of Bedrock endpoints."""
    pairs = [
        *((c, "sg") for c in ("PER-SG-1", "PER-SG-2", "PER-SG-3", "PER-SG-4")),
        ("PER-DSG-1", "sg"),
        ("PER-DSG-2", "eni"),
        ("PER-FL-1", "vpc"),
        ("PER-REV-1", "sg"),
        ("PER-REV-2", "sg"),
        ("PER-VPC-1", "model"),
        ("PER-VPC-1", "notebook"),
        ("PER-VPC-1", "marketplace-endpoint"),
        ("PER-VPC-2", "model"),
        *(("PER-IAM-1", kind) for kind in ("role", "user", "group", "policy")),
        ("PER-EXM-1", "sg"),
        ("PER-NET-1", "eni"),
    ]
    return frozenset(p for p in pairs if policy.mode(p[0]) != "off")


def resource_kind(finding: Mapping[str, Any]) -> str:
    """``sg``, ``vpc``, ``eni``, ``model``, ``notebook``... from the finding's deterministic Id
    (``perimeter/<control>/<account>/<region>/<short id>``)."""
    parts = str(finding.get("Id", "")).split("/", 4)
    short = parts[4] if len(parts) == 5 else ""
    return short.split("/", 1)[0] if "/" in short else short.split("-", 1)[0]


def to_resolve(
    existing: Iterable[Mapping[str, Any]],
    raised: Iterable[str],
    scope: frozenset[tuple[str, str]],
    *,
    account: str,
    region: str,
) -> list[Mapping[str, Any]]:
    """Active findings in the sweep's scope that it did not raise again: fixed or gone."""
    seen = set(raised)
    prefix = f"/{account}/{region}/"
    out = []
    for f in existing:
        if f.get("RecordState") != "ACTIVE" or f["Id"] in seen:
            continue
        generator = str(f.get("GeneratorId"))
        if not str(f["Id"]).startswith(f"perimeter/{generator}{prefix}"):
            continue
        if (generator, resource_kind(f)) in scope:
            out.append(f)
    return out


_KEEP = (*OWN_FIELDS, "ProductFields")


def resolved(finding: Mapping[str, Any], *, now: str, why: str, sweep_id: str) -> dict[str, Any]:
    """The finding again, PASSED/ARCHIVED, saying why; first sighting kept, UpdatedAt moved on."""
    out = {k: finding[k] for k in _KEEP if k in finding}
    out["UpdatedAt"] = max(now, str(finding.get("UpdatedAt", "")))
    out["LastObservedAt"] = now
    out["Description"] = (
        f"Resolved by Perimeter's sweep ({sweep_id}): {why}. " + str(finding.get("Description", ""))
    )[:1024]
    fields = dict(finding.get("ProductFields") or {})
    fields["perimeter/action"] = "resolved"
    fields["perimeter/resolved_by"] = sweep_id
    fields["perimeter/resolved_because"] = why
    # Security Hub adds its own product fields ("aws/securityhub/..."); a provider may not send them.
    out["ProductFields"] = {k: v for k, v in fields.items() if not k.startswith("aws/")}
    out["Compliance"] = {"Status": "PASSED"}
    out["Workflow"] = {"Status": "RESOLVED"}
    out["RecordState"] = "ARCHIVED"
    return out


def keep_first_sighting(finding: dict[str, Any], existing: Mapping[str, Any] | None) -> dict[str, Any]:
    """A re-raised finding keeps when it was first seen and created."""
    if not existing:
        return finding
    out = dict(finding)
    for key in ("FirstObservedAt", "CreatedAt"):
        if existing.get(key):
            out[key] = min(str(existing[key]), str(finding.get(key, existing[key])))
    out["UpdatedAt"] = max(str(finding["UpdatedAt"]), str(existing.get("UpdatedAt", "")))
    return out


def compliant(finding: dict[str, Any], action: str) -> dict[str, Any]:
    """A finding whose problem Perimeter removed during this sweep: PASSED/ARCHIVED."""
    out = dict(finding)
    out["Compliance"] = {"Status": "PASSED"}
    out["Workflow"] = {"Status": "RESOLVED"}
    out["RecordState"] = "ARCHIVED"
    out["ProductFields"] = {**finding.get("ProductFields", {}), "perimeter/action": action}
    return out


def group_resource_id(ctx: GroupContext) -> str:
    return ec2_arn(ctx.region, ctx.account, "security-group", ctx.group_id)
