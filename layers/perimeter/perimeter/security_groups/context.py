"""What the controls need to know about a group beyond the event itself (pure data).

Gathered by the service from one DescribeSecurityGroups call plus a per-container cache of the
VPC's routing; built by hand in unit tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from perimeter.core.arns import ec2_arn
from perimeter.core.netmath import Net, net_of
from perimeter.core.rules import Rule
from perimeter.policy import Exemption, Policy


@dataclass(frozen=True, slots=True)
class VpcFacts:
    """A VPC's address space and whether any of its route tables reaches an internet gateway."""

    vpc_id: str
    cidrs: tuple[str, ...]
    internet_routed: bool | None


@dataclass(frozen=True, slots=True)
class PrefixList:
    """A managed prefix list as the union rule needs it: its entries, and whether AWS owns it
    (AWS-managed lists hold AWS's own service ranges and are trusted)."""

    prefix_list_id: str
    aws_managed: bool
    cidrs: tuple[str, ...] = ()
    version: int | None = None

    @property
    def nets(self) -> tuple[Net, ...]:
        return tuple(net_of(c) for c in self.cidrs)


@dataclass(frozen=True, slots=True)
class GroupContext:
    group_id: str
    account: str
    region: str
    group_name: str | None = None
    vpc_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    vpc_cidrs: tuple[str, ...] = ()
    internet_routed: bool | None = None
    current_rules: tuple[Rule, ...] = ()
    exists: bool = True
    #: the customer- and AWS-managed prefix lists the group's rules name, by id
    prefix_lists: Mapping[str, PrefixList] = field(default_factory=dict)
    #: the undo's exemptions for this group (``perimeter.core.exemptions``), read beside it
    exemptions: tuple[Exemption, ...] = ()

    def tier(self, policy: Policy) -> str | None:
        return policy.tiers.tier_of(self.tags)

    @property
    def is_default(self) -> bool:
        return self.group_name == "default"

    @property
    def arn(self) -> str:
        return ec2_arn(self.region, self.account, "security-group", self.group_id)


def vpc_facts_from_tables(tables: Iterable[Mapping[str, Any]]) -> dict[str, VpcFacts]:
    """Each VPC's CIDRs and internet routing, from its route tables (the ``local`` routes are
    the VPC's CIDRs; an active ``igw-`` target means a public subnet)."""
    cidrs: dict[str, set[str]] = {}
    routed: dict[str, bool] = {}
    for table in tables:
        vpc = str(table.get("VpcId", ""))
        cidrs.setdefault(vpc, set())
        routed.setdefault(vpc, False)
        for route in table.get("Routes", []):
            gateway = str(route.get("GatewayId", ""))
            dest = route.get("DestinationCidrBlock") or route.get("DestinationIpv6CidrBlock")
            if gateway == "local" and dest:
                cidrs[vpc].add(dest)
            elif gateway.startswith("igw-") and route.get("State", "active") == "active":
                routed[vpc] = True
    return {vpc: VpcFacts(vpc, tuple(sorted(c)), routed[vpc] if c else None) for vpc, c in cidrs.items()}
