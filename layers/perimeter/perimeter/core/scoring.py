"""Score an exposed rule 0-100, with the reasons that make up the number (pure).

The score answers "how bad is this, here": what is exposed (port, protocol), to whom (how wide
the source is, IPv6), on what (a model endpoint's group weighs more) and how reachable it is (a
VPC routed to an internet gateway or not). Policy thresholds turn it into a severity and decide
whether ``enforce`` acts, so a /32 SSH rule can be a LOW finding while a world-open one is
revoked. Every term is listed in ``Score.reasons`` so a reviewer can check the arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

from perimeter.core.netmath import ALL_PROTOCOLS, net_text
from perimeter.core.rules import Rule
from perimeter.policy import Policy
from perimeter.security_groups.context import GroupContext
from perimeter.security_groups.exposure import GroupFacts, RuleFacts, union_reason


@dataclass(frozen=True, slots=True)
class Score:
    value: int
    reasons: tuple[str, ...]


# (max prefix length, points): an IPv4 /8 is as wide in practice as an IPv6 /16.
_WIDTH_TABLE = {4: ((0, 50), (8, 40), (16, 30), (24, 15)), 6: ((0, 50), (16, 40), (32, 30), (48, 15))}


def _width(f: RuleFacts, world_share: float) -> tuple[int, str]:
    rule = f.rule
    if f.union_share >= world_share and f.union_peers:
        return 50, union_reason(f)
    net = f.widest
    if net is None:
        return 0, f"source {rule.peer} is a prefix list or group reference (+0)"
    where = rule.cidr or f"{rule.prefix_list_id} entry {net_text(net)}"
    version = net[0]
    if net[3] == 0:
        return 50, f"source {where} is the whole IPv{version} internet (+50)"
    if f.union_share >= world_share:
        return 50, union_reason(f)
    plen = net[3]
    points = 4
    for limit, p in _WIDTH_TABLE[version]:
        if plen <= limit:
            points = p
            break
    return points, f"source {where} spans 2^{net.size_log2} addresses (+{points})"


def _ports(f: RuleFacts, g: GroupFacts) -> tuple[int, str]:
    protocol = f.protocol
    if protocol == ALL_PROTOCOLS:
        return 25, "all protocols and ports (+25)"
    if not f.has_ports:
        return 0, f"{protocol} carries no ports (+0)"
    if f.all_open:
        return 25, f"every {protocol} port (+25)"
    text = str(f.lo) if f.lo == f.hi else f"{f.lo}-{f.hi}"
    if f.high_risk:
        listed = g.risk_text(protocol, f.lo, f.hi)
        return 20, f"{protocol}/{text} includes high-risk port(s) {listed} (+20)"
    return 10, f"{protocol}/{text} is not a known high-risk port (+10)"


def score_facts(f: RuleFacts, g: GroupFacts) -> Score:
    """Score one rule from its facts and its group's (the evaluation's hot path)."""
    wp, wr = _width(f, g.cp.world_share)
    pp, pr = _ports(f, g)
    total = wp + pp + g.group_points
    if f.rule.ipv6:
        total += 5
        reasons = (wr, pr, "IPv6 source, often missed by reviews (+5)", *g.group_reasons)
    else:
        reasons = (wr, pr, *g.group_reasons)
    return Score(0 if total < 0 else 100 if total > 100 else total, reasons)


def score_rule(rule: Rule, ctx: GroupContext, policy: Policy) -> Score:
    """Score one rule in its group's context, on its own (no union with the group's other
    rules; ``security_groups.evaluate`` scores with the union applied)."""
    g = GroupFacts(ctx, policy)
    return score_facts(RuleFacts(rule, g), g)
