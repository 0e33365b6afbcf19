"""PER-NET-1: is a model-tier ENI reachable from the internet, and by which path (pure).

A security-group rule from the world is only half of an exposure: the packet must also come
through an internet gateway attached to the VPC, a route back to it from the ENI's subnet
(its explicit route-table association, else the VPC's main table), a public address on the ENI,
the subnet's network ACL inbound (rules in number order, first match wins) and outbound for the
reply to the client's ephemeral port. Any of them can be opened by one call that SgGuard never
sees (AttachInternetGateway, CreateRoute, AssociateAddress, CreateNetworkAclEntry...).

The evaluation works on address sets, not on yes/no per hop: for each IP version it starts from
the public address space (``netmath.PUBLIC_RANGES``) and intersects, hop by hop, the sources
each hop lets through: the destinations routed to the gateway (longest prefix wins), the
sources the ACL's first matching rule allows, the sources the security groups' rules admit
(the union of every group of the ENI, as AWS applies them). The ENI is reachable when what is
left covers at least ``thresholds.world_share`` of public space, the share that makes a union
of rules "the world" for PER-SG-1 (exposure.py), on some protocol and port. Otherwise the
evaluation names the first hop where the set fell below it. Two /1s routed to the gateway are
the world, as two /1s in a group are; a route to the gateway for 0.0.0.0/1 and a group open to
128.0.0.0/1 are not.

Inputs are the VPC as the Describe calls return it (``VpcNetwork``, built by
``network.service``'s reads or by the sweep's listings); the output is one ``Reach`` per model ENI.

Policy snippet (``policy/default.yaml``)::

    controls:
      PER-NET-1: {mode: detect}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from perimeter.core.arns import ec2_arn
from perimeter.core.controls import Control, register
from perimeter.core.netmath import MAX_PORT, PUBLIC_RANGES, PUBLIC_TOTAL, net_of
from perimeter.core.rules import Rule, rules_of_group
from perimeter.policy import Policy
from perimeter.posture.controls import Issue, arn_resource
from perimeter.security_groups.context import GroupContext
from perimeter.security_groups.exposure import GroupFacts, facts_of

Spans = tuple[tuple[int, int], ...]


def _no_rule_matches(*_: Any) -> bool:
    return False


NET_1 = register(
    Control(
        id="PER-NET-1",
        practice=5,
        title="Model-tier network interface reachable from the internet",
        description=(
            "A model-tier ENI (a SageMaker or Bedrock endpoint's, a notebook's, or one in a "
            "model-tier security group) has a complete path from the internet: an internet "
            "gateway attached to its VPC, a route to it from the ENI's subnet, a public address, "
            "a network ACL that admits the traffic and its reply, and a security-group rule "
            "open to the world."
        ),
        remediation=(
            "Close any hop of the path the finding names: move the model to a private subnet "
            "(no route to the internet gateway), remove the public address, deny the traffic in "
            "the subnet's network ACL, or remove the security-group rule. Reach the model "
            "through a load balancer or PrivateLink."
        ),
        types=("Software and Configuration Checks/AWS Security Best Practices/Network Reachability",),
        permissions=(),
        matches=_no_rule_matches,
        remediation_url="https://docs.aws.amazon.com/vpc/latest/userguide/how-it-works.html",
    )
)

#: The order a packet from the internet meets the hops (and the order a finding names them).
HOPS = (
    "internet-gateway",
    "route-table",
    "subnet",
    "public-address",
    "network-acl-inbound",
    "network-acl-outbound",
    "security-group",
)
#: Client ports a reply goes to (RFC 6056's range; Linux, Windows and NAT gateways use parts of it).
EPHEMERAL = (1024, MAX_PORT)
_PROTO_NUM = {"tcp": "6", "udp": "17", "icmp": "1", "icmpv6": "58", "-1": "-1", "all": "-1"}
_PROTO_NAME = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6", "-1": "all"}
_PORTED = ("6", "17")
_MODEL_MARKERS = ("sagemaker", "bedrock")


# --- address sets as sorted disjoint spans --------------------------------------------------


def _norm(spans: Iterable[tuple[int, int]]) -> Spans:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return tuple(out)


def _intersect(a: Spans, b: Spans) -> Spans:
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def _minus(a: Spans, lo: int, hi: int) -> Spans:
    out = []
    for x, y in a:
        if y < lo or x > hi:
            out.append((x, y))
            continue
        if x < lo:
            out.append((x, lo - 1))
        if y > hi:
            out.append((hi + 1, y))
    return tuple(out)


def _share(spans: Spans, version: int) -> float:
    return sum(hi - lo + 1 for lo, hi in spans) / PUBLIC_TOTAL[version]


# --- the VPC as the Describe calls return it ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    destination: str
    target: str
    active: bool = True


@dataclass(frozen=True, slots=True)
class RouteTable:
    table_id: str
    main: bool
    #: subnet id -> association id
    subnets: Mapping[str, str]
    routes: tuple[Route, ...]


@dataclass(frozen=True, slots=True)
class AclEntry:
    number: int
    egress: bool
    allow: bool
    protocol: str  # "-1", "6", "17", "1", "58" or another number
    cidr: str
    lo: int = 0
    hi: int = MAX_PORT


@dataclass(frozen=True, slots=True)
class NetworkAcl:
    acl_id: str
    default: bool
    subnets: tuple[str, ...]
    entries: tuple[AclEntry, ...]


@dataclass(frozen=True, slots=True)
class Subnet:
    subnet_id: str
    map_public_ip: bool = False


@dataclass(frozen=True, slots=True)
class ModelEni:
    eni_id: str
    subnet_id: str
    group_ids: tuple[str, ...]
    #: why it is the model tier ("SageMaker-managed", "group sg-1 is the model tier")
    why_model: str
    public_ip: str | None = None
    association_id: str | None = None
    allocation_id: str | None = None
    ipv6: tuple[str, ...] = ()
    #: requester-managed ENIs (a service's) never get a public IPv4 from MapPublicIpOnLaunch
    service_managed: bool = False
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VpcNetwork:
    vpc_id: str
    #: internet gateways attached to the VPC (state available)
    gateways: tuple[str, ...]
    route_tables: tuple[RouteTable, ...]
    acls: tuple[NetworkAcl, ...]
    subnets: Mapping[str, Subnet]
    #: every ENI of the VPC, raw (DescribeNetworkInterfaces)
    enis: tuple[Mapping[str, Any], ...]
    #: every security group of the VPC, raw (DescribeSecurityGroups)
    groups: Mapping[str, Mapping[str, Any]]
    #: rules removed since the groups were listed (the sweep's revokes), by group: ``Rule.describe()``
    removed: Mapping[str, frozenset[str]] = field(default_factory=dict)


def _acl_entry(raw: Mapping[str, Any]) -> AclEntry | None:
    cidr = raw.get("CidrBlock") or raw.get("Ipv6CidrBlock")
    if not cidr:
        return None
    ports = raw.get("PortRange") or {}
    protocol = str(raw.get("Protocol", "-1"))
    lo, hi = 0, MAX_PORT
    if protocol in _PORTED and ports:
        lo, hi = int(ports.get("From", 0)), int(ports.get("To", MAX_PORT))
    return AclEntry(
        number=int(raw.get("RuleNumber", 32767)),
        egress=bool(raw.get("Egress")),
        allow=str(raw.get("RuleAction", "deny")).lower() == "allow",
        protocol=protocol,
        cidr=str(cidr),
        lo=min(lo, hi),
        hi=max(lo, hi),
    )


def network_from_api(
    vpc_id: str,
    *,
    gateways: Iterable[Mapping[str, Any]],
    route_tables: Iterable[Mapping[str, Any]],
    acls: Iterable[Mapping[str, Any]],
    subnets: Iterable[Mapping[str, Any]],
    enis: Iterable[Mapping[str, Any]],
    groups: Iterable[Mapping[str, Any]],
) -> VpcNetwork:
    """The VPC from the raw Describe responses (each listing filtered to the VPC or not: what
    belongs to another VPC is dropped here, so the sweep's region-wide listings serve too)."""
    attached = tuple(
        str(g["InternetGatewayId"])
        for g in gateways
        if any(
            a.get("VpcId") == vpc_id and a.get("State", "available") in ("available", "attached")
            for a in g.get("Attachments", [])
        )
    )
    tables = []
    for t in route_tables:
        if t.get("VpcId") != vpc_id:
            continue
        assoc = t.get("Associations", [])
        tables.append(
            RouteTable(
                table_id=str(t["RouteTableId"]),
                main=any(a.get("Main") for a in assoc),
                subnets={
                    str(a["SubnetId"]): str(a.get("RouteTableAssociationId", ""))
                    for a in assoc
                    if a.get("SubnetId")
                    and (a.get("AssociationState") or {}).get("State", "associated") == "associated"
                },
                routes=tuple(
                    Route(
                        destination=str(r.get("DestinationCidrBlock") or r.get("DestinationIpv6CidrBlock")),
                        target=str(
                            r.get("GatewayId")
                            or r.get("NatGatewayId")
                            or r.get("NetworkInterfaceId")
                            or r.get("TransitGatewayId")
                            or r.get("VpcPeeringConnectionId")
                            or r.get("EgressOnlyInternetGatewayId")
                            or ""
                        ),
                        active=r.get("State", "active") == "active",
                    )
                    for r in t.get("Routes", [])
                    if r.get("DestinationCidrBlock") or r.get("DestinationIpv6CidrBlock")
                ),
            )
        )
    out_acls = []
    for a in acls:
        if a.get("VpcId") != vpc_id:
            continue
        entries = tuple(e for e in (_acl_entry(x) for x in a.get("Entries", [])) if e is not None)
        out_acls.append(
            NetworkAcl(
                acl_id=str(a["NetworkAclId"]),
                default=bool(a.get("IsDefault")),
                subnets=tuple(str(x["SubnetId"]) for x in a.get("Associations", []) if x.get("SubnetId")),
                entries=entries,
            )
        )
    return VpcNetwork(
        vpc_id=vpc_id,
        gateways=attached,
        route_tables=tuple(tables),
        acls=tuple(out_acls),
        subnets={
            str(s["SubnetId"]): Subnet(str(s["SubnetId"]), bool(s.get("MapPublicIpOnLaunch")))
            for s in subnets
            if s.get("VpcId") == vpc_id
        },
        enis=tuple(e for e in enis if e.get("VpcId") == vpc_id),
        groups={str(g["GroupId"]): g for g in groups if g.get("VpcId") == vpc_id},
    )


# --- which ENIs are the model tier ----------------------------------------------------------


def model_enis(net: VpcNetwork, policy: Policy, model_groups: Iterable[str] = ()) -> list[ModelEni]:
    """The VPC's model-tier ENIs: one in a group tagged as the model tier (``tiers``), in a
    group a model names (``model_groups``, as the sweep and ModelPosture judge such groups), or
    one SageMaker or Bedrock made (requester id, description or the service's ENI type)."""
    known = set(model_groups)
    out = []
    for raw in net.enis:
        groups = tuple(str(g["GroupId"]) for g in raw.get("Groups", []))
        why = ""
        for gid in groups:
            tags = {t["Key"]: t.get("Value", "") for t in (net.groups.get(gid) or {}).get("Tags", []) or []}
            if policy.tiers.tier_of(tags) == "model":
                why = f"security group {gid} is the model tier"
                break
            if gid in known:
                why = f"security group {gid} serves a model"
                break
        owner = " ".join(
            str(raw.get(k) or "") for k in ("RequesterId", "Description", "InterfaceType")
        ).lower()
        if not why and any(m in owner for m in _MODEL_MARKERS):
            marker = next(m for m in _MODEL_MARKERS if m in owner)
            service = "SageMaker" if marker == "sagemaker" else "Bedrock"
            why = f"made by {service} ({raw.get('Description') or raw.get('RequesterId')})"
        if not why:
            continue
        assoc = raw.get("Association") or {}
        out.append(
            ModelEni(
                eni_id=str(raw["NetworkInterfaceId"]),
                subnet_id=str(raw.get("SubnetId", "")),
                group_ids=groups,
                why_model=why,
                public_ip=assoc.get("PublicIp"),
                association_id=assoc.get("AssociationId"),
                allocation_id=assoc.get("AllocationId"),
                ipv6=tuple(
                    str(a["Ipv6Address"]) for a in raw.get("Ipv6Addresses", []) if a.get("Ipv6Address")
                ),
                service_managed=bool(raw.get("RequesterManaged")),
                description=str(raw.get("Description") or ""),
                tags={t["Key"]: t.get("Value", "") for t in raw.get("TagSet", []) or []},
            )
        )
    return out


# --- the evaluation -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hop:
    kind: str
    resource_id: str
    text: str


@dataclass(frozen=True, slots=True)
class Reach:
    """One model ENI judged: the open hops in order, and either the ports reachable from the
    world (``reachable``) or the first closed hop."""

    eni: ModelEni
    vpc_id: str
    version: int
    hops: tuple[Hop, ...]
    reachable: bool
    closed: Hop | None = None
    #: "tcp/8080, tcp/22" where reachable
    ports: str = ""
    share: float = 0.0
    #: reachable only once the ENI (or its next launch) gets the public IPv4 the subnet maps
    latent: bool = False

    @property
    def path(self) -> str:
        return " -> ".join(["internet", *(h.text for h in self.hops)])


def _table_of(net: VpcNetwork, subnet_id: str) -> tuple[RouteTable | None, str]:
    for t in net.route_tables:
        if subnet_id in t.subnets:
            return t, f"associated: {t.subnets[subnet_id] or t.table_id}"
    main = next((t for t in net.route_tables if t.main), None)
    return main, "no association: the main route table"


def _acl_of(net: VpcNetwork, subnet_id: str) -> NetworkAcl | None:
    for a in net.acls:
        if subnet_id in a.subnets:
            return a
    return next((a for a in net.acls if a.default), None)


def _routed(table: RouteTable, gateways: Sequence[str], version: int) -> tuple[Spans, str]:
    """Public addresses whose most specific route in the table is an attached internet gateway."""
    remaining = PUBLIC_RANGES[version]
    covered: list[tuple[int, int]] = []
    names: list[str] = []
    routes = []
    for r in table.routes:
        try:
            n = net_of(r.destination)
        except ValueError:
            continue
        if n[0] == version:
            routes.append((n, r))
    for n, r in sorted(routes, key=lambda x: -x[0][3]):
        hit = _intersect(remaining, ((n[1], n[2]),))
        if r.active and r.target in gateways and hit:
            covered.extend(hit)
            names.append(f"{r.destination} -> {r.target}")
        remaining = _minus(remaining, n[1], n[2])
    return _norm(covered), ", ".join(names)


def _acl_allows(
    entries: Sequence[AclEntry], egress: bool, version: int, protocol: str, port: int | None
) -> Spans:
    """Public addresses the ACL lets through on this protocol and port (first match wins)."""
    remaining = PUBLIC_RANGES[version]
    allowed: list[tuple[int, int]] = []
    for e in sorted((e for e in entries if e.egress == egress), key=lambda e: e.number):
        if e.protocol not in ("-1", protocol):
            continue
        if e.protocol != "-1" and protocol in _PORTED and port is not None and not e.lo <= port <= e.hi:
            continue
        try:
            n = net_of(e.cidr)
        except ValueError:
            continue
        if n[0] != version:
            continue
        if e.allow:
            allowed.extend(_intersect(remaining, ((n[1], n[2]),)))
        remaining = _minus(remaining, n[1], n[2])
        if not remaining:
            break
    return _norm(allowed)


@dataclass(frozen=True, slots=True)
class _Open:
    """A security-group rule's contribution: protocol number, ports, the sources it admits."""

    protocol: str
    lo: int
    hi: int
    sources: Spans
    rule: str


def _sg_opens(eni: ModelEni, net: VpcNetwork, policy: Policy, version: int) -> list[_Open]:
    """Ingress the ENI's groups admit, each rule with its public sources (exposure's facts:
    CIDRs, and prefix-list entries where read; a group reference is never the internet)."""
    rules: list[Rule] = []
    for gid in eni.group_ids:
        raw = net.groups.get(gid)
        if raw is not None:
            gone = net.removed.get(gid, frozenset())
            rules.extend(r for r in rules_of_group(raw) if not r.egress and r.describe() not in gone)
    if not rules:
        return []
    ctx = GroupContext(
        group_id=eni.group_ids[0], account="", region="", vpc_id=net.vpc_id, current_rules=tuple(rules)
    )
    out = []
    for f in facts_of(rules, GroupFacts(ctx, policy)):
        spans = _norm((n[1], n[2]) for n in f.sources if n[0] == version)
        spans = _intersect(spans, PUBLIC_RANGES[version])
        if not spans:
            continue
        proto = _PROTO_NUM.get(f.protocol, f.protocol)
        if (proto == "58" and version == 4) or (proto == "1" and version == 6):
            continue
        out.append(
            _Open(
                proto, f.lo if f.has_ports else 0, f.hi if f.has_ports else MAX_PORT, spans, f.rule.describe()
            )
        )
    return out


def _segments(points: Iterable[int], lo: int, hi: int) -> list[tuple[int, int]]:
    bounds = sorted({lo, hi + 1, *(p for p in points if lo < p <= hi)})
    return [(a, b - 1) for a, b in pairwise(bounds)]


def _ports_text(protocol: str, lo: int, hi: int) -> str:
    name = _PROTO_NAME.get(protocol, protocol)
    if protocol not in _PORTED:
        return name
    if lo <= 0 and hi >= MAX_PORT:
        return f"{name}/all ports"
    return f"{name}/{lo}" if lo == hi else f"{name}/{lo}-{hi}"


def _fmt_share(spans: Spans, version: int) -> str:
    return f"{_share(spans, version):.0%} of public IPv{version} space"


class _Closed(Exception):
    """A hop that lets too little of the world through: where the walk stops."""

    def __init__(self, kind: str, resource_id: str, text: str) -> None:
        super().__init__(text)
        self.hop = Hop(kind, resource_id, text)


def _outer_hops(
    eni: ModelEni, net: VpcNetwork, version: int, ws: float, hops: list[Hop]
) -> tuple[Spans, bool]:
    """Gateway, route table, subnet and public address, in order: the public sources routed to
    the ENI and whether its public IPv4 is only mapped on launch. Raises ``_Closed``."""
    if not net.gateways:
        raise _Closed("internet-gateway", net.vpc_id, f"no internet gateway attached to {net.vpc_id}")
    gws = ", ".join(net.gateways)
    hops.append(Hop("internet-gateway", ",".join(net.gateways), f"internet gateway {gws} on {net.vpc_id}"))
    table, how = _table_of(net, eni.subnet_id)
    if table is None:
        raise _Closed("route-table", eni.subnet_id, f"subnet {eni.subnet_id} has no route table")
    reach, names = _routed(table, net.gateways, version)
    if _share(reach, version) < ws:
        what = (
            f"routes only {names} ({_fmt_share(reach, version)})"
            if names
            else "has no route to the internet gateway"
        )
        raise _Closed("route-table", table.table_id, f"route table {table.table_id} {what}")
    hops.append(Hop("route-table", table.table_id, f"route table {table.table_id} ({names})"))
    assoc = table.subnets.get(eni.subnet_id) or eni.subnet_id
    hops.append(Hop("subnet", assoc, f"subnet {eni.subnet_id} ({how})"))
    if version == 6:
        public = [a for a in eni.ipv6 if _intersect(((net_of(a)[1], net_of(a)[1]),), PUBLIC_RANGES[6])]
        if not public:
            raise _Closed("public-address", eni.eni_id, f"{eni.eni_id} has no global IPv6 address")
        hops.append(Hop("public-address", public[0], f"IPv6 {public[0]} on {eni.eni_id}"))
        return reach, False
    if eni.public_ip:
        via = f"Elastic IP ({eni.allocation_id})" if eni.allocation_id else "public IPv4"
        hops.append(Hop("public-address", eni.public_ip, f"{via} {eni.public_ip}"))
        return reach, False
    subnet = net.subnets.get(eni.subnet_id)
    if subnet is None or not subnet.map_public_ip or eni.service_managed:
        raise _Closed("public-address", eni.eni_id, f"{eni.eni_id} has no public IPv4 address")
    text = (
        f"subnet {eni.subnet_id} maps a public IPv4 on launch (MapPublicIpOnLaunch): "
        "the model's next interface there gets one"
    )
    hops.append(Hop("public-address", eni.subnet_id, text))
    return reach, True


@dataclass
class _PortWalk:
    """The inner hops per protocol and port segment: the ACL inbound, the ACL outbound to the
    client's ephemeral ports, then the groups. Keeps the furthest any segment got."""

    acl: NetworkAcl
    eni: ModelEni
    version: int
    ws: float
    reach: Spans
    best: tuple[int, float, str, str] = (-1, -1.0, "", "")
    found: list[tuple[str, int, int]] = field(default_factory=list)
    top: float = 0.0

    def _stop(self, depth: int, spans: Spans, kind: str, text: str) -> None:
        self.best = max(self.best, (depth, _share(spans, self.version), kind, text))

    def segment(self, protocol: str, lo: int, hi: int, covering: Sequence[_Open], out_set: Spans) -> None:
        v, acl = self.version, self.acl
        where = _ports_text(protocol, lo, hi)
        port = lo if protocol in _PORTED else None
        inbound = _intersect(self.reach, _acl_allows(acl.entries, False, v, protocol, port))
        if _share(inbound, v) < self.ws:
            text = f"network ACL {acl.acl_id} admits {_fmt_share(inbound, v)} on {where}"
            return self._stop(0, inbound, "network-acl-inbound", text)
        both = _intersect(inbound, out_set)
        if _share(both, v) < self.ws:
            text = f"network ACL {acl.acl_id} lets replies to ephemeral ports reach {_fmt_share(both, v)}"
            return self._stop(1, both, "network-acl-outbound", text)
        final = _intersect(both, _norm(s for o in covering for s in o.sources))
        if _share(final, v) < self.ws:
            groups = ", ".join(self.eni.group_ids)
            text = f"security groups {groups} admit {_fmt_share(final, v)} on {where} past the hops before"
            return self._stop(2, final, "security-group", text)
        self.top = max(self.top, _share(final, v))
        self.found.append((protocol, lo, hi))
        return None

    def run(self, opens: Sequence[_Open]) -> None:
        named = {o.protocol for o in opens}
        protocols = (named | ({"6", "17"} if "-1" in named else set())) - {"-1"}
        acl_points = [p for e in self.acl.entries for p in (e.lo, e.hi + 1)]
        for protocol in sorted(protocols):
            members = [o for o in opens if o.protocol in (protocol, "-1")]
            out_set = _intersect(self.reach, _egress_back(self.acl, self.version, protocol))
            if protocol in _PORTED:
                spans = _segments([p for o in members for p in (o.lo, o.hi + 1)] + acl_points, 0, MAX_PORT)
            else:
                spans = [(0, MAX_PORT)]
            for lo, hi in spans:
                covering = [o for o in members if o.lo <= lo and hi <= o.hi]
                if covering:
                    self.segment(protocol, lo, hi, covering, out_set)


def evaluate_eni(
    eni: ModelEni, net: VpcNetwork, policy: Policy, version: int, memo: dict[Any, Any] | None = None
) -> Reach:
    """The path from the internet to ``eni`` over one IP version. ``memo`` keeps the inner walk
    of ENIs that share an ACL, a set of groups and the routed sources (a fleet of model
    servers in one subnet costs one walk)."""
    ws = policy.thresholds.world_share
    hops: list[Hop] = []
    latent = False
    groups = ",".join(eni.group_ids)
    no_rule = f"no ingress rule of {', '.join(eni.group_ids)} admits public sources"
    try:
        reach, latent = _outer_hops(eni, net, version, ws, hops)
        acl = _acl_of(net, eni.subnet_id)
        if acl is None:
            raise _Closed("network-acl-inbound", eni.subnet_id, f"subnet {eni.subnet_id} has no network ACL")
        key = (acl.acl_id, eni.group_ids, version, reach)
        hit = memo.get(key) if memo is not None else None
        if hit is None:
            opens = _sg_opens(eni, net, policy, version)
            walk = _PortWalk(acl, eni, version, ws, reach)
            walk.run(opens)
            hit = (opens, walk)
            if memo is not None:
                memo[key] = hit
        opens, walk = hit
        if not walk.found:
            depth, _, kind, text = walk.best
            if depth < 0:
                raise _Closed("security-group", groups, no_rule)
            if depth >= 1:
                hops.append(
                    Hop(
                        "network-acl-inbound",
                        acl.acl_id,
                        f"network ACL {acl.acl_id} (inbound allows the world)",
                    )
                )
            if depth >= 2:
                text2 = f"network ACL {acl.acl_id} (replies to ephemeral ports allowed)"
                hops.append(Hop("network-acl-outbound", acl.acl_id, text2))
            raise _Closed(kind, acl.acl_id if kind.startswith("network-acl") else groups, text)
    except _Closed as stop:
        return Reach(eni, net.vpc_id, version, tuple(hops), False, stop.hop, latent=latent)
    ports = _merge_ports(walk.found)
    rules = sorted(
        {
            o.rule
            for o in opens
            for p, lo, hi in walk.found
            if o.protocol in (p, "-1") and o.lo <= lo and hi <= o.hi
        }
    )
    eph = f"{EPHEMERAL[0]}-{EPHEMERAL[1]}"
    hops.append(
        Hop(
            "network-acl-inbound",
            acl.acl_id,
            f"network ACL {acl.acl_id} in: {ports} from the world",
        )
    )
    hops.append(
        Hop(
            "network-acl-outbound",
            acl.acl_id,
            f"out: replies to ports {eph}",
        )
    )
    hops.append(Hop("security-group", groups, f"{groups}: {'; '.join(rules[:5])}"))
    return Reach(eni, net.vpc_id, version, tuple(hops), True, None, ports, walk.top, latent)


def _egress_back(acl: NetworkAcl, version: int, protocol: str) -> Spans:
    """Clients a reply can reach: the union over the ephemeral ports of what the ACL's
    outbound rules allow (any one port is enough for some client)."""
    if protocol not in _PORTED:
        return _acl_allows(acl.entries, True, version, protocol, None)
    points = [p for e in acl.entries if e.egress for p in (e.lo, e.hi + 1)]
    out: list[tuple[int, int]] = []
    for lo, _hi in _segments(points, *EPHEMERAL):
        out.extend(_acl_allows(acl.entries, True, version, protocol, lo))
    return _norm(out)


def _merge_ports(found: Sequence[tuple[str, int, int]]) -> str:
    merged: dict[str, list[tuple[int, int]]] = {}
    for protocol, lo, hi in found:
        merged.setdefault(protocol, []).append((lo, hi))
    parts = []
    for protocol, spans in sorted(merged.items(), key=lambda kv: _PROTO_NAME.get(kv[0], kv[0])):
        for lo, hi in _norm(spans):
            parts.append(_ports_text(protocol, lo, hi))
    return ", ".join(parts[:8]) + (f" (+{len(parts) - 8} more)" if len(parts) > 8 else "")


def evaluate(net: VpcNetwork, policy: Policy, model_groups: Iterable[str] = ()) -> list[Reach]:
    """Every model ENI of the VPC, judged over IPv4 and IPv6: the reachable version when one
    is (IPv4 first), else the one whose path went furthest."""
    out = []
    memo: dict[Any, Any] = {}
    for eni in model_enis(net, policy, model_groups):
        tried = [evaluate_eni(eni, net, policy, v, memo) for v in (4, 6)]
        hit = next((r for r in tried if r.reachable and not r.latent), None) or next(
            (r for r in tried if r.reachable), None
        )
        out.append(hit or max(tried, key=lambda r: (len(r.hops), r.version == 4)))
    return out


# --- findings -------------------------------------------------------------------------------


def eni_resource(eni: ModelEni, *, account: str, region: str, vpc_id: str) -> Any:
    return arn_resource(
        "AwsEc2NetworkInterface",
        ec2_arn(region, account, "network-interface", eni.eni_id),
        eni.eni_id,
        {"NetworkInterfaceId": eni.eni_id, "VpcId": vpc_id, "SubnetId": eni.subnet_id},
    )


def issue_of(r: Reach, *, account: str, region: str) -> Issue:
    """The PER-NET-1 issue of a reachable ENI: the path hop by hop, and the fix per hop."""
    eni = r.eni
    score = 90 if not r.latent else 60
    reasons = [
        f"{eni.eni_id} is the model tier: {eni.why_model}",
        f"every hop from the internet is open over IPv{r.version} ({r.share:.0%} of public space) (+{score})",
    ]
    if r.latent:
        reasons.append("no public IPv4 yet: the subnet maps one on launch (-30)")
    # The path itself is the finding's chain ("Chain: internet -> ..."): the summary says what
    # and on which ports, so the description stays within ASFF's 1024 characters.
    summary = (
        f"Model-tier ENI {eni.eni_id} is reachable from the internet on {r.ports} (IPv{r.version})."
        if not r.latent
        else f"Model-tier ENI {eni.eni_id} would be reachable from the internet on {r.ports} once it "
        "gets the public IPv4 its subnet maps on launch."
    )
    by_kind = {h.kind: h for h in r.hops}
    igw, table = by_kind["internet-gateway"].resource_id, by_kind["route-table"].resource_id
    fixes = [
        f"close one hop: delete the route to {igw} from {table} "
        f"(or give subnet {eni.subnet_id} a private table)"
    ]
    if r.version == 4 and eni.association_id:
        fixes.append(f"aws ec2 disassociate-address --association-id {eni.association_id}")
    elif r.version == 4 and r.latent:
        fixes.append(
            f"aws ec2 modify-subnet-attribute --subnet-id {eni.subnet_id} --no-map-public-ip-on-launch"
        )
    fixes.append(f"deny {r.ports} in {by_kind['network-acl-inbound'].resource_id}")
    fixes.append(f"or remove the world rule from {', '.join(eni.group_ids)}")
    return Issue(
        control_id="PER-NET-1",
        resource=eni_resource(eni, account=account, region=region, vpc_id=r.vpc_id),
        score=score,
        reasons=tuple(reasons),
        summary=summary,
        chain=("internet", *(h.text for h in r.hops)),
        fix="; ".join(fixes) + ".",
        evidence={
            "perimeter/path": " | ".join(f"{h.kind}={h.resource_id}" for h in r.hops),
            "perimeter/ports": r.ports,
            "perimeter/vpc": r.vpc_id,
            **({"perimeter/association_id": eni.association_id} if eni.association_id else {}),
            **(
                {"perimeter/route_table_association": by_kind["subnet"].resource_id}
                if by_kind["subnet"].resource_id.startswith("rtbassoc-")
                else {}
            ),
            **({"perimeter/public_ip": eni.public_ip} if eni.public_ip else {}),
        },
        vpc_id=r.vpc_id,
        group_id=eni.group_ids[0] if eni.group_ids else None,
        tags=eni.tags,
    )


def closed_reason(r: Reach) -> str:
    hop = r.closed
    return f"ENI {r.eni.eni_id} is not reachable from the internet: {hop.text if hop else 'no path'}."
