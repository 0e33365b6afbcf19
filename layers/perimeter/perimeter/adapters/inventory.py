"""Inventory adapter: the region's listings the sweep reads, with the fewest requests.

Every read here is a paginated listing of the whole region (or of a chunk of ids), never one
describe per resource and never a tag call: DescribeSecurityGroups and DescribeNetworkInterfaces
already carry the tags. The only per-VPC call is DescribeStaleSecurityGroups (AWS has no
region-wide form), and it is made only for VPCs that take part in a peering connection, the
only way a rule can go stale across VPCs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

from botocore.exceptions import ClientError

from perimeter.adapters.ec2 import GROUP_GONE, RULE_GONE, RevokeResult, error_code
from perimeter.core.rules import Rule, rule_from_api_rule, rules_from_permission
from perimeter.default_groups.plan import Eni, eni_from_api
from perimeter.security_groups.context import VpcFacts, vpc_facts_from_tables

#: The largest page DescribeSecurityGroups and DescribeNetworkInterfaces serve (MaxResults).
PAGE = {"PageSize": 1000}
#: EC2 accepts up to 200 values per filter.
FILTER_CHUNK = 200
DEPENDENCY = {"DependencyViolation"}


def _chunks(ids: Sequence[str], size: int = FILTER_CHUNK) -> Iterator[list[str]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


@dataclass(frozen=True, slots=True)
class StaleGroup:
    """A group with rules that name a group across a deleted or inactive peering."""

    group_id: str
    vpc_id: str
    rules: tuple[Rule, ...]


@dataclass
class Listing:
    """What the region holds, as the listings returned it (raw where the evaluation needs the
    API's shape)."""

    groups: list[dict[str, Any]] = field(default_factory=list)
    enis: list[Eni] = field(default_factory=list)
    vpc_ids: list[str] = field(default_factory=list)
    vpc_facts: dict[str, VpcFacts] = field(default_factory=dict)
    endpoint_groups: set[str] = field(default_factory=set)
    template_groups: set[str] = field(default_factory=set)
    peered_vpcs: set[str] = field(default_factory=set)


class InventoryAdapter:
    def __init__(self, client: Any) -> None:
        self._ec2 = client

    def _pages(self, operation: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        for page in self._ec2.get_paginator(operation).paginate(**params):
            yield from page.get(key, [])

    # --- listings ------------------------------------------------------------------------
    def security_groups(self) -> list[dict[str, Any]]:
        return list(self._pages("describe_security_groups", "SecurityGroups", PaginationConfig=PAGE))

    def network_interfaces(self) -> list[Eni]:
        raw = self._pages("describe_network_interfaces", "NetworkInterfaces", PaginationConfig=PAGE)
        return [eni_from_api(r) for r in raw]

    def vpc_ids(self) -> list[str]:
        return [str(v["VpcId"]) for v in self._pages("describe_vpcs", "Vpcs")]

    def vpc_facts(self) -> dict[str, VpcFacts]:
        return vpc_facts_from_tables(self._pages("describe_route_tables", "RouteTables"))

    def endpoint_groups(self) -> set[str]:
        """Groups attached to any VPC endpoint (interface endpoints carry groups)."""
        out: set[str] = set()
        for ep in self._pages("describe_vpc_endpoints", "VpcEndpoints"):
            out.update(str(g["GroupId"]) for g in ep.get("Groups", []) if g.get("GroupId"))
        return out

    def launch_template_groups(self) -> set[str]:
        """Groups named by the default or latest version of any launch template (one listing:
        without a template id, ``$Latest``/``$Default`` cover every template)."""
        out: set[str] = set()
        for v in self._pages(
            "describe_launch_template_versions", "LaunchTemplateVersions", Versions=["$Latest", "$Default"]
        ):
            data = v.get("LaunchTemplateData") or {}
            out.update(str(g) for g in data.get("SecurityGroupIds", []) or [])
            for ni in data.get("NetworkInterfaces", []) or []:
                out.update(str(g) for g in ni.get("Groups", []) or [])
        return out

    def peered_vpcs(self) -> set[str]:
        out: set[str] = set()
        for pcx in self._pages("describe_vpc_peering_connections", "VpcPeeringConnections"):
            for side in ("RequesterVpcInfo", "AccepterVpcInfo"):
                vpc = (pcx.get(side) or {}).get("VpcId")
                if vpc:
                    out.add(str(vpc))
        return out

    def listing(self, *, enis: bool = True, vpcs: bool = True, review: bool = True) -> Listing:
        """What the sweep judges: groups and route tables always; ENIs, the VPC list and the
        review's listings only when a control in the policy needs them."""
        return self.start_listing(enis=enis, vpcs=vpcs, review=review)()

    def start_listing(
        self,
        *,
        enis: bool = True,
        vpcs: bool = True,
        review: bool = True,
        submit: Callable[[Callable[[], Any]], Future[Any]] | None = None,
    ) -> Callable[[], Listing]:
        """``listing``, started: with ``submit`` (an executor's) every listing goes out now,
        the security groups' first (the longest), none waiting on another; the function
        returned waits for them. Without it, the function returned reads them one by one."""
        wanted: dict[str, Callable[[], Any]] = {"groups": self.security_groups, "vpc_facts": self.vpc_facts}
        if enis:
            wanted["enis"] = self.network_interfaces
        if vpcs:
            wanted["vpc_ids"] = self.vpc_ids
        if review:
            wanted["endpoint_groups"] = self.endpoint_groups
            wanted["template_groups"] = self.launch_template_groups
            wanted["peered_vpcs"] = self.peered_vpcs
        futures = {name: submit(read) for name, read in wanted.items()} if submit is not None else {}

        def collect() -> Listing:
            out = Listing()
            for name, read in wanted.items():
                setattr(out, name, futures[name].result() if name in futures else read())
            return out

        return collect

    def stale_groups(self, vpc_ids: Iterable[str]) -> list[StaleGroup]:
        """DescribeStaleSecurityGroups, paginated, for each VPC (AWS's API is per VPC)."""
        out: list[StaleGroup] = []
        for vpc in sorted(set(vpc_ids)):
            for raw in self._pages("describe_stale_security_groups", "StaleSecurityGroupSet", VpcId=vpc):
                gid = str(raw["GroupId"])
                rules: list[Rule] = []
                for key, egress in (("StaleIpPermissions", False), ("StaleIpPermissionsEgress", True)):
                    for perm in raw.get(key, []) or []:
                        rules.extend(rules_from_permission(gid, egress, perm))
                out.append(StaleGroup(gid, str(raw.get("VpcId", vpc)), tuple(rules)))
        return out

    def rule_ids(self, group_ids: Iterable[str]) -> dict[tuple[Any, ...], str]:
        """Rule id by rule content for these groups only, 200 groups a request: for rules a
        revoke cannot name by content (a reference to a group that no longer exists)."""
        out: dict[tuple[Any, ...], str] = {}
        ids = sorted(set(group_ids))
        for start in range(0, len(ids), FILTER_CHUNK):
            chunk = ids[start : start + FILTER_CHUNK]
            for raw in self._pages(
                "describe_security_group_rules",
                "SecurityGroupRules",
                Filters=[{"Name": "group-id", "Values": chunk}],
            ):
                rule = rule_from_api_rule(raw)
                if rule.rule_id:
                    out[rule.key] = rule.rule_id
        return out

    # --- writes --------------------------------------------------------------------------
    def revoke(self, group_id: str, rules: Sequence[Rule]) -> RevokeResult:
        """Revoke these rules by their content, as the listing read them: one call per
        direction (rules that carry an id, references to deleted groups, go by id). A rule
        changed since the read (ModifySecurityGroupRules) no longer matches
        and stays, where a revoke by id would remove the changed rule. A rule already gone is
        done: AWS names it in ``UnknownIpPermissions`` (or, in older behaviour and in moto,
        fails the call, which is then settled rule by rule)."""
        result = RevokeResult()
        for egress in (False, True):
            batch = [r for r in rules if bool(r.egress) == egress]
            by_id = [r for r in batch if r.rule_id]
            by_content = [r for r in batch if not r.rule_id]
            if by_content:
                self._revoke(group_id, egress, by_content, result)
            if by_id:
                self._revoke_ids(group_id, egress, by_id, result)
        return result

    def _revoke_ids(self, group_id: str, egress: bool, batch: list[Rule], result: RevokeResult) -> None:
        call = self._ec2.revoke_security_group_egress if egress else self._ec2.revoke_security_group_ingress
        try:
            call(GroupId=group_id, SecurityGroupRuleIds=[str(r.rule_id) for r in batch])
        except ClientError as exc:
            code = error_code(exc)
            if code in RULE_GONE and len(batch) > 1:
                for rule in batch:  # settle each rule on its own: only the gone ones fail
                    self._revoke_ids(group_id, egress, [rule], result)
                return
            if code in RULE_GONE | GROUP_GONE:
                result.already_gone.extend(batch)
                result.group_gone = result.group_gone or code in GROUP_GONE
                return
            raise
        result.revoked.extend(batch)

    def _revoke(self, group_id: str, egress: bool, batch: list[Rule], result: RevokeResult) -> None:
        call = self._ec2.revoke_security_group_egress if egress else self._ec2.revoke_security_group_ingress
        try:
            resp = call(GroupId=group_id, IpPermissions=[_bare(r) for r in batch])
        except ClientError as exc:
            code = error_code(exc)
            if code in GROUP_GONE:
                result.already_gone.extend(batch)
                result.group_gone = True
                return
            if code not in RULE_GONE:
                raise
            if len(batch) == 1:
                result.already_gone.extend(batch)
                return
            for rule in batch:
                self._revoke(group_id, egress, [rule], result)
            return
        unknown = {
            r.key
            for perm in resp.get("UnknownIpPermissions", []) or []
            for r in rules_from_permission(group_id, egress, perm)
        }
        ids = {
            rule_from_api_rule(x).key: x.get("SecurityGroupRuleId")
            for x in resp.get("RevokedSecurityGroupRules", []) or []
        }
        for r in batch:
            if r.key in unknown:
                result.already_gone.append(r)
            else:
                result.revoked.append(r if r.rule_id else r.with_id(ids.get(r.key)))

    def delete_group(self, group_id: str) -> str:
        """``deleted``, ``gone`` (already), or ``in-use`` (something joined it since the read)."""
        try:
            self._ec2.delete_security_group(GroupId=group_id)
        except ClientError as exc:
            code = error_code(exc)
            if code in GROUP_GONE:
                return "gone"
            if code in DEPENDENCY:
                return "in-use"
            raise
        return "deleted"


def prefix_lists_named(group: Mapping[str, Any]) -> set[str]:
    """The managed prefix lists a group's rules name (ingress and egress), as listed."""
    return {
        str(pl["PrefixListId"])
        for key in ("IpPermissions", "IpPermissionsEgress")
        for perm in group.get(key, []) or []
        for pl in perm.get("PrefixListIds", []) or []
        if pl.get("PrefixListId")
    }


def _bare(rule: Rule) -> dict[str, Any]:
    """The rule's permission without its description (a revoke matches on content only)."""
    return replace(rule, description=None).to_permission()
