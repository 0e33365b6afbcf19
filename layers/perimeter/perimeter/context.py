"""What the controls need to know about a group beyond the event itself (pure data).

Gathered by the service from one DescribeSecurityGroups call plus a per-container cache of the
VPC's routing; built by hand in unit tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from perimeter.arns import ec2_arn
from perimeter.policy import Policy
from perimeter.rules import Rule


@dataclass(frozen=True, slots=True)
class VpcFacts:
    """A VPC's address space and whether any of its route tables reaches an internet gateway."""

    vpc_id: str
    cidrs: tuple[str, ...]
    internet_routed: bool | None


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

    def tier(self, policy: Policy) -> str | None:
        return policy.tiers.tier_of(self.tags)

    @property
    def is_default(self) -> bool:
        return self.group_name == "default"

    @property
    def arn(self) -> str:
        return ec2_arn(self.region, self.account, "security-group", self.group_id)
