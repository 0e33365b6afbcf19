"""Score an exposed rule 0-100, with the reasons that make up the number (pure).

The score answers "how bad is this, here": what is exposed (port, protocol), to whom (how wide
the source is, IPv6), on what (a model endpoint's group weighs more) and how reachable it is (a
VPC routed to an internet gateway or not). Policy thresholds turn it into a severity and decide
whether ``enforce`` acts, so a /32 SSH rule can be a LOW finding while a world-open one is
revoked. Every term is listed in ``Score.reasons`` so a reviewer can check the arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

from perimeter.context import GroupContext
from perimeter.netmath import ALL_PROTOCOLS, address_count_log2, parse_cidr
from perimeter.policy import Policy
from perimeter.rules import Rule


@dataclass(frozen=True, slots=True)
class Score:
    value: int
    reasons: tuple[str, ...]


# (max prefix length, points): an IPv4 /8 is as wide in practice as an IPv6 /16.
_WIDTH_TABLE = {4: ((0, 50), (8, 40), (16, 30), (24, 15)), 6: ((0, 50), (16, 40), (32, 30), (48, 15))}


def _width_points(rule: Rule) -> tuple[int, str]:
    if not rule.cidr:
        return 0, f"source {rule.peer} is a prefix list or group reference (+0)"
    net = parse_cidr(rule.cidr)
    if net.prefixlen == 0:
        return 50, f"source {rule.cidr} is the whole IPv{net.version} internet (+50)"
    points = next((p for limit, p in _WIDTH_TABLE[net.version] if net.prefixlen <= limit), 4)
    host_bits = address_count_log2(rule.cidr)
    return points, f"source {rule.cidr} spans 2^{host_bits} addresses (+{points})"


def _port_points(rule: Rule, policy: Policy) -> tuple[int, str]:
    ports = rule.ports
    if rule.protocol == ALL_PROTOCOLS:
        return 25, "all protocols and ports (+25)"
    if ports is None:
        return 0, f"{rule.protocol} carries no ports (+0)"
    if ports.is_all:
        return 25, f"every {rule.protocol} port (+25)"
    risky = [s for s in policy.high_risk_ports if s.overlaps(rule.protocol, ports)]
    if risky:
        listed = ", ".join(str(s.ports) for s in risky[:3])
        return 20, f"{rule.protocol}/{ports} includes high-risk port(s) {listed} (+20)"
    return 10, f"{rule.protocol}/{ports} is not a known high-risk port (+10)"


def score_rule(rule: Rule, ctx: GroupContext, policy: Policy) -> Score:
    """Score one rule in its group's context."""
    reasons: list[str] = []
    total = 0
    for points, why in (_width_points(rule), _port_points(rule, policy)):
        total += points
        reasons.append(why)
    if rule.ipv6:
        total += 5
        reasons.append("IPv6 source, often missed by reviews (+5)")
    tier = ctx.tier(policy)
    if tier == "model":
        total += 15
        reasons.append(f"group {ctx.group_id} is the model tier (+15)")
    elif tier:
        reasons.append(f"group {ctx.group_id} is the {tier} tier (+0)")
    if ctx.internet_routed is True:
        total += 5
        reasons.append(f"VPC {ctx.vpc_id} routes to an internet gateway (+5)")
    elif ctx.internet_routed is False:
        # Routing changes with one API call: a world-open rule stays enforceable without it.
        total -= 10
        reasons.append(f"VPC {ctx.vpc_id} has no internet-gateway route today (-10)")
    else:
        reasons.append("internet reachability unknown, assumed reachable (+0)")
    value = max(0, min(100, total))
    return Score(value, tuple(reasons))
