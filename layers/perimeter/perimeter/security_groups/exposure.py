"""What each rule of a group exposes, worked out once per evaluation (pure).

The SG controls all ask the same few questions of a rule — which ports, which sources, is a
source the world, outside the VPC, trusted, is a port high-risk or publicly allowed — and a
group may hold 10,000 rules. ``RuleFacts`` answers them once per rule from integer
arithmetic (``netmath.Net``); ``GroupFacts`` holds what is constant for the group (the policy
compiled to interval tables, the VPC's ranges, the tier, the score terms that do not depend
on the rule). The controls and the score read these facts, so one evaluation costs a few
microseconds per rule and grows linearly with the group.

**Exposure is the union.** For each protocol and port, the sources of every ingress rule that
opens it — CIDRs and the entries of customer-managed prefix lists — are merged; when the
merge covers at least ``thresholds.world_share`` of the public address space of an IP
version, each of those rules is world-open for PER-SG-1 (two /1s are the world, and so is a
customer prefix list holding ``0.0.0.0/0``). AWS-managed prefix lists are trusted (AWS's own
service ranges); a prefix list Perimeter could not read proves nothing.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

from perimeter.core.netmath import (
    ALL_PROTOCOLS,
    MAX_PORT,
    PORTED_PROTOCOLS,
    PUBLIC_TOTAL,
    Net,
    net_of,
    net_text,
    parse_cidr,
    public_count,
    public_share,
)
from perimeter.core.rules import Rule
from perimeter.policy import Policy
from perimeter.security_groups.context import GroupContext, PrefixList

_ICMP = ("icmp", "icmpv6")


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """The policy's port lists and CIDRs as interval tables (built once per policy)."""

    #: protocol -> (sorted lows, matching highs) of merged high-risk ranges
    high_risk: Mapping[str, tuple[tuple[int, ...], tuple[int, ...]]]
    #: protocol -> the public allow-list's ranges, unmerged (one spec must cover a rule)
    public: Mapping[str, tuple[tuple[int, int], ...]]
    trusted: tuple[Net, ...]
    world_prefix: Mapping[int, int]
    world_share: float
    any_high_risk: bool


def _merge(spans: list[tuple[int, int]]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    spans.sort()
    lows: list[int] = []
    highs: list[int] = []
    for lo, hi in spans:
        if highs and lo <= highs[-1] + 1:
            highs[-1] = max(highs[-1], hi)
        else:
            lows.append(lo)
            highs.append(hi)
    return tuple(lows), tuple(highs)


_COMPILED: dict[int, tuple[Policy, CompiledPolicy]] = {}


def compiled(policy: Policy) -> CompiledPolicy:
    """The compiled form of ``policy``, built on first use (policies are immutable)."""
    hit = _COMPILED.get(id(policy))
    if hit is not None and hit[0] is policy:
        return hit[1]
    risky: dict[str, list[tuple[int, int]]] = {}
    for spec in policy.high_risk_ports:
        risky.setdefault(spec.protocol, []).append((spec.ports.low, spec.ports.high))
    public: dict[str, list[tuple[int, int]]] = {}
    for spec in policy.public_ports:
        public.setdefault(spec.protocol, []).append((spec.ports.low, spec.ports.high))
    t = policy.thresholds
    out = CompiledPolicy(
        high_risk={p: _merge(spans) for p, spans in risky.items()},
        public={p: tuple(spans) for p, spans in public.items()},
        trusted=tuple(net_of(c) for c in policy.trusted_cidrs),
        world_prefix={4: t.world_max_prefix_ipv4, 6: t.world_max_prefix_ipv6},
        world_share=t.world_share,
        any_high_risk=bool(policy.high_risk_ports),
    )
    if len(_COMPILED) > 64:  # tests build many policies; a container holds one or two
        _COMPILED.clear()
    _COMPILED[id(policy)] = (policy, out)
    return out


def _overlaps(table: tuple[tuple[int, ...], tuple[int, ...]] | None, lo: int, hi: int) -> bool:
    if table is None:
        return False
    lows, highs = table
    i = bisect_right(lows, hi) - 1  # the last merged range starting at or below ``hi``
    return i >= 0 and highs[i] >= lo


class GroupFacts:
    """What every rule of one group shares: the compiled policy, VPC ranges, tier, and the
    score terms that depend on the group only."""

    __slots__ = (
        "_risk_text",
        "cp",
        "ctx",
        "group_points",
        "group_reasons",
        "is_model",
        "policy",
        "prefix_lists",
        "public_ok",
        "tier",
        "vpc",
    )

    def __init__(self, ctx: GroupContext, policy: Policy) -> None:
        self.ctx = ctx
        self.policy = policy
        self.cp = compiled(policy)
        self.tier = ctx.tier(policy)
        self.is_model = self.tier == "model"
        self.public_ok = not self.is_model or policy.public_ports_on_model_tier
        self.vpc = tuple(net_of(c) for c in ctx.vpc_cidrs)
        self.prefix_lists: Mapping[str, PrefixList] = ctx.prefix_lists
        points = 0
        reasons: list[str] = []
        if self.is_model:
            points += 15
            reasons.append(f"group {ctx.group_id} is the model tier (+15)")
        elif self.tier:
            reasons.append(f"group {ctx.group_id} is the {self.tier} tier (+0)")
        if ctx.internet_routed is True:
            points += 5
            reasons.append(f"VPC {ctx.vpc_id} routes to an internet gateway (+5)")
        elif ctx.internet_routed is False:
            # Routing changes with one API call: a world-open rule stays enforceable without it.
            points -= 10
            reasons.append(f"VPC {ctx.vpc_id} has no internet-gateway route today (-10)")
        else:
            reasons.append("internet reachability unknown, assumed reachable (+0)")
        self.group_points = points
        self.group_reasons = tuple(reasons)
        self._risk_text: dict[tuple[str, int, int], str] = {}

    def risk_text(self, protocol: str, lo: int, hi: int) -> str:
        """The first three high-risk specs a range touches, as the score's reason shows them."""
        key = (protocol, lo, hi)
        text = self._risk_text.get(key)
        if text is None:
            hits = [
                str(s.ports)
                for s in self.policy.high_risk_ports
                if (protocol == ALL_PROTOCOLS or protocol == s.protocol)
                and s.ports.low <= hi
                and lo <= s.ports.high
            ]
            text = self._risk_text[key] = ", ".join(hits[:3])
        return text

    def outside_vpc(self, net: Net) -> bool:
        """Provably outside the VPC. With the VPC's CIDRs unknown only the world is provably
        outside: Perimeter revokes only what it can prove offending."""
        if net[3] == 0:
            return True
        version, first, last = net[0], net[1], net[2]
        for v in self.vpc:
            if v[0] == version and v[1] <= first and last <= v[2]:
                return False
        return bool(self.vpc)

    def trusted(self, net: Net) -> bool:
        version, first, last = net[0], net[1], net[2]
        for t in self.cp.trusted:  # noqa: SIM110 -- a loop, not any(genexpr): the hot path
            if t[0] == version and t[1] <= first and last <= t[2]:
                return True
        return False

    def world(self, net: Net) -> bool:
        """This one source is the world: a /0, or wider than the policy's prefix threshold and
        not private."""
        plen = net[3]
        if plen == 0:
            return True
        return plen <= self.cp.world_prefix[net[0]] and not parse_cidr(net_text(net)).is_private


class RuleFacts:
    """One rule's exposure, in the terms the controls and the score use."""

    __slots__ = (
        "all_open",
        "egress",
        "has_ports",
        "hi",
        "high_risk",
        "lo",
        "protocol",
        "public_allowed",
        "rule",
        "sources",
        "union_peers",
        "union_share",
        "untrusted_outside",
        "widest",
        "world_source",
    )

    def __init__(self, rule: Rule, g: GroupFacts) -> None:
        self.rule = rule
        self.egress = bool(rule.egress)
        protocol = self.protocol = rule.protocol
        cp = g.cp
        self.has_ports, lo, hi = _port_span(rule)
        self.lo, self.hi = lo, hi
        self.all_open = protocol == ALL_PROTOCOLS or (self.has_ports and lo <= 0 and hi >= MAX_PORT)
        sources = self.sources = _sources(rule, g)
        if len(sources) == 1:
            self.widest: Net | None = sources[0]
        else:
            # v6 prefixes are about twice v4's for the same practical width (see scoring)
            self.widest = min(sources, key=lambda n: n[3] if n[0] == 4 else n[3] / 2) if sources else None
        world = outside = False
        for n in sources:
            if not world and g.world(n):
                world = True
            if not outside and g.outside_vpc(n) and not g.trusted(n):
                outside = True
        self.world_source = world
        self.untrusted_outside = outside
        if protocol == ALL_PROTOCOLS:
            self.high_risk = cp.any_high_risk
        else:
            self.high_risk = self.has_ports and _overlaps(cp.high_risk.get(protocol), lo, hi)
        allowed = False
        if g.public_ok and self.has_ports:
            for plo, phi in cp.public.get(protocol, ()):
                if plo <= lo and hi <= phi:
                    allowed = True
                    break
        self.public_allowed = allowed
        self.union_share = 0.0
        self.union_peers = 0


def _port_span(rule: Rule) -> tuple[bool, int, int]:
    """(carries ports, low, high): ICMP has none; -1 and numbered protocols are the whole
    protocol; a TCP/UDP range with a missing or -1 bound is every port."""
    protocol = rule.protocol
    if protocol in _ICMP:
        return False, 0, -1
    if protocol in PORTED_PROTOCOLS:
        f, t = rule.from_port, rule.to_port
        if f is None or t is None or f < 0 or t < 0:
            return True, 0, MAX_PORT
        return (True, f, t) if f <= t else (True, t, f)
    return True, 0, MAX_PORT


def _sources(rule: Rule, g: GroupFacts) -> tuple[Net, ...]:
    if rule.cidr:
        return (net_of(rule.cidr),)
    if rule.prefix_list_id:
        pl = g.prefix_lists.get(rule.prefix_list_id)
        # AWS-managed lists are AWS's own service ranges: trusted. Unread: nothing proven.
        return pl.nets if pl is not None and not pl.aws_managed else ()
    return ()


def facts_of(rules: Sequence[Rule], g: GroupFacts) -> list[RuleFacts]:
    """Every rule's facts, with the union of sources applied (see the module docstring)."""
    out = [RuleFacts(r, g) for r in rules]
    _apply_union(out, g.cp.world_share, ingress=True)
    _apply_union(out, g.cp.world_share, ingress=False)
    return out


def _candidate(f: RuleFacts, ingress: bool) -> bool:
    if f.egress == ingress or not f.sources:
        return False
    if ingress:
        return f.has_ports and not f.public_allowed
    return f.protocol == ALL_PROTOCOLS  # PER-SG-4 judges all-traffic egress only


def _apply_union(facts: Sequence[RuleFacts], share: float, *, ingress: bool) -> None:
    """Mark each candidate rule whose protocol-and-port carries a union of sources that covers
    at least ``share`` of an IP version's public space. Linear in the group unless the sum of
    the candidates' public addresses could reach the share at all (then per port segment)."""
    candidates = [f for f in facts if _candidate(f, ingress)]
    if not candidates:
        return
    need = {v: share * total for v, total in PUBLIC_TOTAL.items()}
    upper = {4: 0, 6: 0}
    for f in candidates:
        for n in f.sources:
            upper[n[0]] += public_count(n) if n[3] <= (16 if n[0] == 4 else 64) else 1 << n.size_log2
    if all(upper[v] < need[v] for v in upper):
        return  # even without overlap the sources cannot reach the share: the common case
    by_protocol: dict[str, list[RuleFacts]] = {}
    every: list[RuleFacts] = []
    for f in candidates:
        if f.protocol == ALL_PROTOCOLS:
            every.append(f)
        else:
            by_protocol.setdefault(f.protocol, []).append(f)
    for own in list(by_protocol.values()) or [[]]:
        _mark_segments(own + every, share)


def _mark_segments(members: list[RuleFacts], share: float) -> None:
    """Split the port axis where any member's range starts or ends; on each piece, merge the
    covering members' sources and mark them when the merge reaches the share."""
    bounds = sorted({f.lo for f in members} | {f.hi + 1 for f in members})
    for start, stop in pairwise(bounds):
        covering = [f for f in members if f.lo <= start and stop - 1 <= f.hi]
        if not covering:
            continue
        shares = public_share(n for f in covering for n in f.sources)
        best = max(shares.values(), default=0.0)
        if best < share:
            continue
        for f in covering:
            if best > f.union_share:
                f.union_share = best
                f.union_peers = len(covering) - 1


def union_reason(f: RuleFacts) -> str:
    what = "all traffic" if f.protocol == ALL_PROTOCOLS else f"{f.protocol}/{_ports(f)}"
    peers = f" with {f.union_peers} other rule(s)" if f.union_peers else ""
    return f"sources of {what}{peers} cover {f.union_share:.0%} of public address space: the world (+50)"


def _ports(f: RuleFacts) -> str:
    if f.lo <= 0 and f.hi >= MAX_PORT:
        return "all ports"
    return str(f.lo) if f.lo == f.hi else f"{f.lo}-{f.hi}"
