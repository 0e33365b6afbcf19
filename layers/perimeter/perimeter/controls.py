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

from perimeter.context import GroupContext
from perimeter.netmath import ALL_PROTOCOLS, is_world, parse_cidr, within_any
from perimeter.policy import Policy
from perimeter.rules import Rule

Predicate = Callable[[Rule, GroupContext, Policy], bool]


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


def _world(rule: Rule, policy: Policy) -> bool:
    if not rule.cidr:
        return False
    limit = policy.thresholds.world_max_prefix_ipv6 if rule.ipv6 else policy.thresholds.world_max_prefix_ipv4
    return is_world(rule.cidr, limit)


def _outside_vpc(rule: Rule, ctx: GroupContext) -> bool:
    """Provably outside the VPC. With the VPC's CIDRs unknown only the world is provably
    outside: Perimeter revokes only what it can prove offending."""
    if not rule.cidr:
        return False
    if parse_cidr(rule.cidr).prefixlen == 0:
        return True
    if not ctx.vpc_cidrs:
        return False
    return not within_any(rule.cidr, ctx.vpc_cidrs)


def _publicly_allowed(rule: Rule, ctx: GroupContext, policy: Policy) -> bool:
    if ctx.tier(policy) == "model" and not policy.public_ports_on_model_tier:
        return False
    return any(spec.covers(rule.protocol, rule.ports) for spec in policy.public_ports)


def _sg1(rule: Rule, ctx: GroupContext, policy: Policy) -> bool:
    if rule.egress or rule.protocol in ("icmp", "icmpv6"):
        return False
    return _world(rule, policy) and not _publicly_allowed(rule, ctx, policy)


def _sg2(rule: Rule, ctx: GroupContext, policy: Policy) -> bool:
    if rule.egress or not rule.cidr:
        return False
    if not any(spec.overlaps(rule.protocol, rule.ports) for spec in policy.high_risk_ports):
        return False
    if within_any(rule.cidr, policy.trusted_cidrs):
        return False
    return _outside_vpc(rule, ctx)


def _sg3(rule: Rule, ctx: GroupContext, policy: Policy) -> bool:
    if rule.egress or not rule.cidr:
        return False
    ports = rule.ports
    all_open = rule.protocol == ALL_PROTOCOLS or (ports is not None and ports.is_all)
    if not all_open or within_any(rule.cidr, policy.trusted_cidrs):
        return False
    return _outside_vpc(rule, ctx)


def _sg4(rule: Rule, ctx: GroupContext, policy: Policy) -> bool:
    if not rule.egress or not rule.cidr or rule.protocol != ALL_PROTOCOLS:
        return False
    return parse_cidr(rule.cidr).prefixlen == 0 and ctx.tier(policy) == "model"


_REVOKE_INGRESS = ("ec2:RevokeSecurityGroupIngress",)

REGISTRY: dict[str, Control] = {
    c.id: c
    for c in (
        Control(
            id="PER-SG-1",
            practice=2,
            title="Security group open to the world on a non-public port",
            description=(
                "An ingress rule admits any address on the internet (a /0, IPv4 or IPv6, "
                "host bits ignored) on a port outside the policy's public allow-list."
            ),
            remediation=(
                "Remove the rule. Reach the service through a load balancer or PrivateLink, "
                "or allow only the CIDRs that need it."
            ),
            types=("Software and Configuration Checks/AWS Security Best Practices/Network Reachability",),
            permissions=_REVOKE_INGRESS,
            matches=_sg1,
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
            matches=_sg2,
        ),
        Control(
            id="PER-SG-3",
            practice=2,
            title="All protocols or all ports open from outside the VPC",
            description="An ingress rule opens every protocol or every port to sources outside the VPC.",
            remediation="Remove the rule and allow only the protocol and ports the application uses.",
            types=("Software and Configuration Checks/AWS Security Best Practices/Network Reachability",),
            permissions=_REVOKE_INGRESS,
            matches=_sg3,
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
            matches=_sg4,
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
