"""One security-group rule, the unit every SG control judges and every revoke removes.

AWS's own model (``SecurityGroupRule``) has one peer per rule: one CIDR, one prefix list or one
referenced group. CloudTrail's ``ipPermissions`` bundles many peers per permission, and
``DescribeSecurityGroups`` returns the bundled form without rule ids. Everything is flattened to
``Rule`` here so that "the same rule" means the same thing everywhere (``Rule.key``), and so a
removed rule can be written back exactly (``Rule.to_permission``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from perimeter.core.events import items
from perimeter.core.netmath import (
    ALL_PROTOCOLS,
    PortRange,
    normalize_protocol,
    parse_cidr,
    rule_ports,
    to_int_port,
)


@dataclass(frozen=True, slots=True)
class Rule:
    """A single-peer security-group rule. ``egress`` is None when a record does not say
    (ModifySecurityGroupRules names a rule id, not its direction)."""

    group_id: str
    egress: bool | None
    protocol: str
    from_port: int | None
    to_port: int | None
    cidr: str | None = None
    ipv6: bool = False
    prefix_list_id: str | None = None
    referenced_group_id: str | None = None
    rule_id: str | None = None
    description: str | None = None

    @property
    def ports(self) -> PortRange | None:
        return rule_ports(self.protocol, self.from_port, self.to_port)

    @property
    def peer(self) -> str:
        if self.cidr:
            return self.cidr
        return self.prefix_list_id or self.referenced_group_id or "?"

    @property
    def canonical_peer(self) -> str:
        if self.cidr:
            return canonical_cidr(self.cidr)
        return self.peer

    @property
    def key(self) -> tuple[Any, ...]:
        """Identity by content: what AWS compares when it refuses a duplicate rule."""
        ported = self.protocol not in (ALL_PROTOCOLS,)
        return (
            self.group_id,
            self.egress,
            self.protocol,
            self.from_port if ported else None,
            self.to_port if ported else None,
            self.canonical_peer,
        )

    def describe(self) -> str:
        """Human text: ``tcp/22 from 0.0.0.0/0`` or ``all traffic to ::/0``."""
        ports = self.ports
        if self.protocol == ALL_PROTOCOLS:
            what = "all traffic"
        elif ports is None:
            what = f"{self.protocol}"
        else:
            what = f"{self.protocol}/{ports}"
        direction = "to" if self.egress else "from"
        return f"{what} {direction} {self.peer}"

    def to_permission(self) -> dict[str, Any]:
        """The ``IpPermissions`` entry that recreates exactly this rule (used by restore)."""
        perm: dict[str, Any] = {"IpProtocol": self.protocol}
        if self.protocol != ALL_PROTOCOLS and self.from_port is not None:
            perm["FromPort"] = self.from_port
            perm["ToPort"] = self.to_port if self.to_port is not None else self.from_port
        desc = {"Description": self.description} if self.description else {}
        if self.cidr and self.ipv6:
            perm["Ipv6Ranges"] = [{"CidrIpv6": self.cidr, **desc}]
        elif self.cidr:
            perm["IpRanges"] = [{"CidrIp": self.cidr, **desc}]
        elif self.prefix_list_id:
            perm["PrefixListIds"] = [{"PrefixListId": self.prefix_list_id, **desc}]
        elif self.referenced_group_id:
            perm["UserIdGroupPairs"] = [{"GroupId": self.referenced_group_id, **desc}]
        return perm

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rule:
        # to_dict drops None fields, and an all-traffic rule has no ports: default them.
        values = {"from_port": None, "to_port": None, **{k: data[k] for k in cls.__slots__ if k in data}}
        return cls(**values)

    def with_id(self, rule_id: str | None, egress: bool | None = None) -> Rule:
        return replace(self, rule_id=rule_id, egress=self.egress if egress is None else egress)


_CANONICAL: dict[str, str] = {}


def canonical_cidr(text: str) -> str:
    """AWS's form of a CIDR (host bits cleared), formatted once per distinct text."""
    hit = _CANONICAL.get(text)
    if hit is None:
        if len(_CANONICAL) >= 1 << 17:
            _CANONICAL.clear()
        hit = _CANONICAL[text] = str(parse_cidr(text))
    return hit


def _g(mapping: Mapping[str, Any], *names: str) -> Any:
    """First present key among spellings (CloudTrail camelCase, API PascalCase)."""
    for name in names:
        if name in mapping and mapping[name] not in (None, ""):
            return mapping[name]
    return None


def rules_from_permission(group_id: str, egress: bool | None, perm: Mapping[str, Any]) -> list[Rule]:
    """Flatten one permission, in CloudTrail's (``ipRanges.items``) or the API's
    (``IpRanges``) spelling, into single-peer rules."""
    protocol = normalize_protocol(_g(perm, "ipProtocol", "IpProtocol"))
    from_port = to_int_port(_g(perm, "fromPort", "FromPort"))
    to_port = to_int_port(_g(perm, "toPort", "ToPort"))
    # Rules built directly (not ``replace``d from a base): a 10,000-rule group is read on
    # every event that touches it.
    out: list[Rule] = []
    for r in items(_g(perm, "ipRanges", "IpRanges")):
        cidr = _g(r, "cidrIp", "CidrIp")
        if cidr:
            desc = _g(r, "description", "Description")
            out.append(Rule(group_id, egress, protocol, from_port, to_port, cidr, description=desc))
    for r in items(_g(perm, "ipv6Ranges", "Ipv6Ranges")):
        cidr = _g(r, "cidrIpv6", "CidrIpv6")
        if cidr:
            desc = _g(r, "description", "Description")
            out.append(Rule(group_id, egress, protocol, from_port, to_port, cidr, True, description=desc))
    for r in items(_g(perm, "prefixListIds", "PrefixListIds")):
        pl = _g(r, "prefixListId", "PrefixListId")
        if pl:
            desc = _g(r, "description", "Description")
            out.append(
                Rule(group_id, egress, protocol, from_port, to_port, prefix_list_id=pl, description=desc)
            )
    for r in items(_g(perm, "groups", "UserIdGroupPairs")):
        ref = _g(r, "groupId", "GroupId") or _g(r, "groupName", "GroupName")
        if ref:
            desc = _g(r, "description", "Description")
            out.append(
                Rule(
                    group_id, egress, protocol, from_port, to_port, referenced_group_id=ref, description=desc
                )
            )
    return out


def rule_from_api_rule(data: Mapping[str, Any]) -> Rule:
    """A ``SecurityGroupRule`` as DescribeSecurityGroupRules returns it, or as CloudTrail's
    ``securityGroupRuleSet`` item / ModifySecurityGroupRules' request writes it."""
    ref = _g(data, "referencedGroupInfo", "ReferencedGroupInfo")
    ref_id = (_g(ref, "groupId", "GroupId") if isinstance(ref, Mapping) else None) or _g(
        data, "referencedGroupId", "ReferencedGroupId"
    )
    cidr6 = _g(data, "cidrIpv6", "CidrIpv6")
    egress = _g(data, "isEgress", "IsEgress")
    if isinstance(egress, str):
        egress = egress.lower() == "true"
    return Rule(
        group_id=str(_g(data, "groupId", "GroupId") or ""),
        egress=egress if isinstance(egress, bool) else None,
        protocol=normalize_protocol(_g(data, "ipProtocol", "IpProtocol")),
        from_port=to_int_port(_g(data, "fromPort", "FromPort")),
        to_port=to_int_port(_g(data, "toPort", "ToPort")),
        cidr=cidr6 or _g(data, "cidrIpv4", "CidrIpv4"),
        ipv6=bool(cidr6),
        prefix_list_id=_g(data, "prefixListId", "PrefixListId"),
        referenced_group_id=ref_id,
        rule_id=_g(data, "securityGroupRuleId", "SecurityGroupRuleId"),
        description=_g(data, "description", "Description"),
    )


def rules_of_group(group: Mapping[str, Any]) -> list[Rule]:
    """All rules of a group as DescribeSecurityGroups returns it (no rule ids there)."""
    gid = group["GroupId"]
    out: list[Rule] = []
    for perm in group.get("IpPermissions", []):
        out.extend(rules_from_permission(gid, False, perm))
    for perm in group.get("IpPermissionsEgress", []):
        out.extend(rules_from_permission(gid, True, perm))
    return out


def index_by_key(rules: Iterable[Rule]) -> dict[tuple[Any, ...], Rule]:
    return {r.key: r for r in rules}
