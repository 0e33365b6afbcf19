"""The controls: registered objects carrying their id, texts, IAM needs and rule test (pure).

Each control is data first (``Control``: what a finding shows a reviewer, which AWS actions its
remediation needs) and a predicate second (``matches``: does this rule violate it?). Scoring and
modes live elsewhere, so a control answers one question only. ``REGISTRY`` is the single list
that findings, metrics, the template's IAM policies and the tests iterate over.

Policy snippet, for reference (``policy/default.yaml``)::

    controls:
      PER-SG-1: {mode: enforce}
      PER-SG-4: {mode: detect}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from perimeter.core.netmath import ALL_PROTOCOLS
from perimeter.core.rules import Rule
from perimeter.policy import Policy
from perimeter.security_groups.context import GroupContext
from perimeter.security_groups.exposure import GroupFacts, RuleFacts, facts_of

Predicate = Callable[[Rule, GroupContext, Policy], bool]
Judge = Callable[[RuleFacts, GroupFacts], bool]


@dataclass(frozen=True, slots=True)
class Control:
    id: str
    practice: int
    title: str
    description: str
    remediation: str
    #: ASFF finding types
    types: tuple[str, ...]
    #: AWS actions the remediation calls (the detection reads are the service's, not the control's)
    permissions: tuple[str, ...]
    matches: Predicate
    remediation_url: str = "https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html"
    #: the fast form over precomputed facts, for controls that judge security-group rules
    judge: Judge | None = None


def sg1(f: RuleFacts, g: GroupFacts) -> bool:
    """World-open ingress on a port outside the public allow-list: one source is the world,
    or the union of the port's sources covers the policy's share of public space."""
    if f.egress or not f.has_ports or f.public_allowed:
        return False
    return f.world_source or f.union_share >= g.cp.world_share


def sg2(f: RuleFacts, g: GroupFacts) -> bool:
    """A high-risk port from a source outside the VPC and outside the trusted CIDRs."""
    return not f.egress and f.high_risk and f.untrusted_outside


def sg3(f: RuleFacts, g: GroupFacts) -> bool:
    """Every protocol or every port from a source outside the VPC and the trusted CIDRs."""
    return not f.egress and f.all_open and f.untrusted_outside


def sg4(f: RuleFacts, g: GroupFacts) -> bool:
    """All traffic to the world from the model tier (a /0, or destinations whose union
    covers the world)."""
    if not f.egress or f.protocol != ALL_PROTOCOLS or not g.is_model:
        return False
    return any(n[3] == 0 for n in f.sources) or f.union_share >= g.cp.world_share


def _one_rule(judge: Judge) -> Predicate:
    """The predicate on one rule alone (no other rule to form a union with); ``security_groups.evaluate``
    judges whole groups through ``judge`` instead."""

    def matches(rule: Rule, ctx: GroupContext, policy: Policy) -> bool:
        g = GroupFacts(ctx, policy)
        return judge(facts_of((rule,), g)[0], g)

    return matches


_REVOKE_INGRESS = ("ec2:RevokeSecurityGroupIngress",)

REGISTRY: dict[str, Control] = {
    c.id: c
    for c in (
        Control(
            id="PER-SG-1",
            practice=2,
            title="Security group open to the world on a non-public port",
            description=(
                "Ingress admits any address on the internet on a port outside the policy's "
                "public allow-list: a /0 (IPv4 or IPv6, host bits ignored), or sources (CIDRs, "
                "customer prefix-list entries) whose union on that port covers the policy's "
                "share of public address space."
            ),
            remediation=(
                "Remove the rule. Reach the service through a load balancer or PrivateLink, "
                "or allow only the CIDRs that need it."
            ),
            types=("Software and Configuration Checks/AWS Security Best Practices/Network Reachability",),
            permissions=_REVOKE_INGRESS,
            matches=_one_rule(sg1),
            judge=sg1,
        ),
        Control(
            id="PER-SG-2",
            practice=2,
            title="High-risk or model-serving port reachable from outside trusted networks",
            description=(
                "An ingress rule exposes an administration, database or model-serving port "
                "(22, 3389, 5432, 8000, 8080, 8888, ...) to sources outside the VPC and outside "
                "the policy's trusted CIDRs."
            ),
            remediation=(
                "Remove the rule; use SSM Session Manager instead of SSH/RDP, and reach model "
                "servers from the app tier by security-group reference."
            ),
            types=("Software and Configuration Checks/AWS Security Best Practices/Network Reachability",),
            permissions=_REVOKE_INGRESS,
            matches=_one_rule(sg2),
            judge=sg2,
        ),
        Control(
            id="PER-SG-3",
            practice=2,
            title="All protocols or all ports open from outside the VPC",
            description="An ingress rule opens every protocol or every port to sources outside the VPC.",
            remediation="Remove the rule and allow only the protocol and ports the application uses.",
            types=("Software and Configuration Checks/AWS Security Best Practices/Network Reachability",),
            permissions=_REVOKE_INGRESS,
            matches=_one_rule(sg3),
            judge=sg3,
        ),
        Control(
            id="PER-SG-4",
            practice=2,
            title="Unrestricted egress from the model tier",
            description=(
                "A model-tier security group allows all traffic to any address (0.0.0.0/0 or "
                "::/0), so a compromised model server can reach anything on the internet."
            ),
            remediation=(
                "Replace the rule with egress to the VPC endpoints (S3, ECR, CloudWatch Logs, "
                "runtime APIs) and the tiers the model calls."
            ),
            types=("Software and Configuration Checks/AWS Security Best Practices/Network Reachability",),
            permissions=("ec2:RevokeSecurityGroupEgress",),
            matches=_one_rule(sg4),
            judge=sg4,
        ),
    )
}


def register(control: Control) -> Control:
    """Add a control defined in another module (each issue's controls live with their service)."""
    if control.id in REGISTRY and REGISTRY[control.id] is not control:
        raise ValueError(f"control {control.id} registered twice")
    REGISTRY[control.id] = control
    return control


SG_CONTROLS: tuple[Control, ...] = tuple(
    REGISTRY[c] for c in ("PER-SG-1", "PER-SG-2", "PER-SG-3", "PER-SG-4")
)
