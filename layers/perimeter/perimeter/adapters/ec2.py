"""EC2 adapter: the only code that reads or writes security groups.

It takes its client in the constructor (built once per container by ``perimeter.core.runtime``) and
translates AWS error codes into outcomes: a group that no longer exists is a context with
``exists=False``; a rule already gone on revoke is success, not an error.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from perimeter.core.rules import Rule, rule_from_api_rule, rules_of_group
from perimeter.security_groups.context import GroupContext, PrefixList, VpcFacts, vpc_facts_from_tables

GROUP_GONE = {"InvalidGroup.NotFound", "InvalidGroupId.NotFound", "InvalidGroupId.Malformed"}
PREFIX_LIST_GONE = {"InvalidPrefixListID.NotFound", "InvalidPrefixListId.NotFound"}
RULE_GONE = {"InvalidSecurityGroupRuleId.NotFound", "InvalidPermission.NotFound"}


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass
class RevokeResult:
    revoked: list[Rule] = field(default_factory=list)
    already_gone: list[Rule] = field(default_factory=list)
    #: AWS answered that the group itself no longer exists (deleted since it was read)
    group_gone: bool = False


class Ec2Adapter:
    """Security-group reads and revokes, with a per-container cache of VPC facts.

    The group's VPC is known only once DescribeSecurityGroups returns, so reading its route
    tables then would add a round trip before the revoke. Instead, given a ``pool``, a group read
    made while the container holds no fresh region-wide view (its first event, or every
    ``VPC_TTL_SECONDS``) reads the region's route tables beside it, one call, and caches every
    VPC's facts. A region with more than ``REGION_ROUTE_TABLES`` tables is left to the per-VPC
    read (a VPC's tables could straddle pages), as is a VPC newer than the region read.
    """

    #: VPC address space and routing change rarely; a short cache keeps the hot path at one read.
    VPC_TTL_SECONDS = 600.0
    #: The most route tables read region-wide beside a group read (one page of the call).
    REGION_ROUTE_TABLES = 100

    def __init__(self, client: Any, *, clock: Any = time.monotonic, pool: Any = None) -> None:
        self._ec2 = client
        self._clock = clock
        self._pool = pool
        self._vpcs: dict[str, tuple[float, VpcFacts]] = {}
        #: when the region's route tables were last read whole (None: never)
        self._region_read: float | None = None
        #: prefix-list entries by (id, version): a new version is a new key
        self._pl_entries: dict[tuple[str, int | None], tuple[str, ...]] = {}

    # --- reads -------------------------------------------------------------------------
    def group_context(
        self, group_id: str, *, account: str, region: str, with_vpc: bool = True
    ) -> GroupContext:
        """One DescribeSecurityGroups call (plus cached VPC facts, and the prefix lists its
        rules name when it names any)."""
        routes = self._region_routes_beside() if with_vpc else None
        try:
            resp = self._ec2.describe_security_groups(GroupIds=[group_id])
        except ClientError as exc:
            if error_code(exc) in GROUP_GONE:
                return GroupContext(group_id=group_id, account=account, region=region, exists=False)
            raise
        finally:
            if routes is not None:
                self._settle(routes)
        groups = resp.get("SecurityGroups", [])
        if not groups:
            return GroupContext(group_id=group_id, account=account, region=region, exists=False)
        return self.context_of(groups[0], account=account, region=region, with_vpc=with_vpc)

    def context_of(
        self, g: Mapping[str, Any], *, account: str, region: str, with_vpc: bool = True
    ) -> GroupContext:
        """A group as DescribeSecurityGroups returned it, as the evaluation reads it."""
        vpc = self.vpc_facts(g["VpcId"]) if with_vpc and g.get("VpcId") else None
        rules = tuple(rules_of_group(g))
        named = sorted({r.prefix_list_id for r in rules if r.prefix_list_id})
        pls = self.prefix_lists(named) if named else {}
        return context_of_group(g, account=account, region=region, vpc=vpc, rules=rules, prefix_lists=pls)

    def remember_vpcs(self, facts: dict[str, VpcFacts]) -> None:
        """VPC facts read by a region-wide listing (the sweep): later lookups hit the cache."""
        now = self._clock()
        self._vpcs.update({vpc: (now, f) for vpc, f in facts.items()})
        self._region_read = now

    def _region_routes_beside(self) -> Any:
        """Start reading the region's route tables on the pool, unless a fresh region-wide
        read is cached (or there is no pool): a future, or None."""
        if self._pool is None:
            return None
        if self._region_read is not None and self._clock() - self._region_read < self.VPC_TTL_SECONDS:
            return None
        return self._pool.submit(self._region_routes)

    def _region_routes(self) -> tuple[float, dict[str, VpcFacts]] | None:
        now = self._clock()
        resp = self._ec2.describe_route_tables(MaxResults=self.REGION_ROUTE_TABLES)
        if resp.get("NextToken"):
            return None  # a large region: its VPCs are read one by one, as needed
        return now, vpc_facts_from_tables(resp.get("RouteTables", []))

    def _settle(self, routes: Any) -> None:
        """Cache what the region-wide read found. It only saves a round trip: if it failed,
        the group's VPC is read on its own, as without it."""
        try:
            found = routes.result()
        except Exception:  # noqa: BLE001 - the per-VPC read that follows raises what matters
            return
        if found is None:
            return
        when, facts = found
        self._vpcs.update({vpc: (when, f) for vpc, f in facts.items()})
        self._region_read = when

    def groups_naming_prefix_list(self, prefix_list_id: str) -> list[Mapping[str, Any]]:
        """Every group whose ingress or egress names the prefix list, with all its rules:
        DescribeSecurityGroups filtered by ``ip-permission.prefix-list-id``, then by
        ``egress.ip-permission.prefix-list-id`` (filters with different names are ANDed, so
        one call cannot ask for either)."""
        out: dict[str, Mapping[str, Any]] = {}
        paginator = self._ec2.get_paginator("describe_security_groups")
        for name in ("ip-permission.prefix-list-id", "egress.ip-permission.prefix-list-id"):
            flt = [{"Name": name, "Values": [prefix_list_id]}]
            for page in paginator.paginate(Filters=flt):
                for g in page.get("SecurityGroups", []):
                    out.setdefault(str(g["GroupId"]), g)
        return list(out.values())

    def prefix_lists(self, ids: Sequence[str]) -> dict[str, PrefixList]:
        """The named managed prefix lists with their entries. One DescribeManagedPrefixLists
        for their owners and versions; entries read once per list version per container. A
        list that cannot be read is left out (nothing about it is proven)."""
        try:
            resp = self._ec2.describe_managed_prefix_lists(PrefixListIds=list(ids))
        except ClientError as exc:
            if error_code(exc) in PREFIX_LIST_GONE:
                return {}
            raise
        return {str(pl["PrefixListId"]): self._with_entries(pl) for pl in resp.get("PrefixLists", [])}

    def region_prefix_lists(self, named: Iterable[str]) -> dict[str, PrefixList]:
        """The sweep's read: every managed prefix list of the region in one paginated
        DescribeManagedPrefixLists (a list deleted since a rule named it is simply absent,
        where a lookup by id would fail the whole call), then the entries of the customer
        lists in ``named`` only, once per list version per container."""
        wanted = set(named)
        out: dict[str, PrefixList] = {}
        for page in self._ec2.get_paginator("describe_managed_prefix_lists").paginate():
            for pl in page.get("PrefixLists", []):
                if pl.get("PrefixListId") in wanted:
                    out[str(pl["PrefixListId"])] = self._with_entries(pl)
        return out

    def _with_entries(self, pl: Mapping[str, Any]) -> PrefixList:
        pid, version = str(pl["PrefixListId"]), pl.get("Version")
        if pl.get("OwnerId") == "AWS":
            return PrefixList(pid, True, (), version)
        key = (pid, version)
        cidrs = self._pl_entries.get(key)
        if cidrs is None:
            cidrs = self._entries(pid, version)
            self._pl_entries = {k: v for k, v in self._pl_entries.items() if k[0] != pid}
            self._pl_entries[key] = cidrs
        return PrefixList(pid, False, cidrs, version)

    def _entries(self, prefix_list_id: str, version: int | None) -> tuple[str, ...]:
        kwargs: dict[str, Any] = {"PrefixListId": prefix_list_id}
        if version is not None:
            kwargs["TargetVersion"] = version
        cidrs: list[str] = []
        paginator = self._ec2.get_paginator("get_managed_prefix_list_entries")
        for page in paginator.paginate(**kwargs):
            cidrs.extend(e["Cidr"] for e in page.get("Entries", []) if e.get("Cidr"))
        return tuple(cidrs)

    def vpc_facts(self, vpc_id: str) -> VpcFacts:
        """A VPC's CIDRs and internet routing, from its route tables: every table carries the
        ``local`` routes (the VPC's CIDRs, IPv4 and IPv6), and an ``igw-`` target means some
        subnet is public. One call per VPC per ``VPC_TTL_SECONDS``."""
        now = self._clock()
        hit = self._vpcs.get(vpc_id)
        if hit and now - hit[0] < self.VPC_TTL_SECONDS:
            return hit[1]
        paginator = self._ec2.get_paginator("describe_route_tables")
        tables = [
            t
            for page in paginator.paginate(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
            for t in page.get("RouteTables", [])
        ]
        facts = vpc_facts_from_tables(tables).get(vpc_id) or VpcFacts(vpc_id, (), None)
        self._vpcs[vpc_id] = (now, facts)
        return facts

    def rule_ids(self, group_id: str) -> dict[Any, str]:
        """Rule id by rule content, for records that predate rule ids (a second read, taken
        only when a record lacks ``securityGroupRuleSet``)."""
        out: dict[Any, str] = {}
        paginator = self._ec2.get_paginator("describe_security_group_rules")
        for page in paginator.paginate(Filters=[{"Name": "group-id", "Values": [group_id]}]):
            for raw in page.get("SecurityGroupRules", []):
                rule = rule_from_api_rule(raw)
                if rule.rule_id:
                    out[rule.key] = rule.rule_id
        return out

    def rules_by_id(self, group_id: str) -> dict[str, Rule]:
        """The group's current rules by rule id, each with its direction (``IsEgress``): what
        a record that names rules only by id (ModifySecurityGroupRules) changed."""
        out: dict[str, Rule] = {}
        paginator = self._ec2.get_paginator("describe_security_group_rules")
        for page in paginator.paginate(Filters=[{"Name": "group-id", "Values": [group_id]}]):
            for raw in page.get("SecurityGroupRules", []):
                rule = rule_from_api_rule(raw)
                if rule.rule_id:
                    out[rule.rule_id] = rule
        return out

    def default_vpc_group_id(self, name: str) -> str | None:
        """The id of the group called ``name`` in the region's default VPC: a request that
        names a group by ``groupName`` means that VPC's group (EC2 API reference)."""
        vpcs = self._ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}]).get("Vpcs", [])
        if not vpcs:
            return None
        groups = self._ec2.describe_security_groups(
            Filters=[
                {"Name": "group-name", "Values": [name]},
                {"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]},
            ]
        ).get("SecurityGroups", [])
        return str(groups[0]["GroupId"]) if groups else None

    # --- writes ------------------------------------------------------------------------
    def revoke(self, group_id: str, rules: Sequence[Rule]) -> RevokeResult:
        """Revoke exactly these rules, by rule id: one call per direction. A rule already
        gone counts as done; the call is then retried without it so the rest still go."""
        result = RevokeResult()
        for egress in (False, True):
            batch = [r for r in rules if bool(r.egress) == egress]
            if batch:
                self._revoke_batch(group_id, egress, batch, result)
        return result

    def _revoke_batch(self, group_id: str, egress: bool, batch: list[Rule], result: RevokeResult) -> None:
        missing_ids = [r for r in batch if not r.rule_id]
        if missing_ids:
            raise ValueError(f"refusing to revoke by content: rules without ids {missing_ids}")
        call = self._ec2.revoke_security_group_egress if egress else self._ec2.revoke_security_group_ingress
        pending = list(batch)
        while pending:
            try:
                call(GroupId=group_id, SecurityGroupRuleIds=[r.rule_id for r in pending])
            except ClientError as exc:
                code = error_code(exc)
                if code in GROUP_GONE:
                    result.already_gone.extend(pending)
                    result.group_gone = True
                    return
                if code not in RULE_GONE:
                    raise
                gone = _ids_named_in(str(exc), pending)
                if not gone:
                    if len(pending) == 1:
                        result.already_gone.extend(pending)
                        return
                    # The error names no id: settle each rule with its own call.
                    for rule in pending:
                        self._revoke_batch(group_id, egress, [rule], result)
                    return
                result.already_gone.extend(gone)
                pending = [r for r in pending if r not in gone]
                continue
            result.revoked.extend(pending)
            return


def context_of_group(
    g: Mapping[str, Any],
    *,
    account: str,
    region: str,
    vpc: VpcFacts | None,
    rules: tuple[Rule, ...] | None = None,
    prefix_lists: Mapping[str, PrefixList] | None = None,
) -> GroupContext:
    """A group as DescribeSecurityGroups returns it, with its VPC's facts (and the prefix lists
    its rules name, for the union rule), as the controls see it."""
    return GroupContext(
        group_id=g["GroupId"],
        account=account,
        region=region,
        group_name=g.get("GroupName"),
        vpc_id=g.get("VpcId"),
        tags={t["Key"]: t.get("Value", "") for t in g.get("Tags", []) or []},
        vpc_cidrs=vpc.cidrs if vpc else (),
        internet_routed=vpc.internet_routed if vpc else None,
        current_rules=rules if rules is not None else tuple(rules_of_group(g)),
        prefix_lists=prefix_lists or {},
    )


def _ids_named_in(message: str, rules: Iterable[Rule]) -> list[Rule]:
    return [r for r in rules if r.rule_id and r.rule_id in message]
