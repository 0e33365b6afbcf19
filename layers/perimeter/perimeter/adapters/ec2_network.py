"""EC2 adapter for the network around a group: ENIs, subnets, VPC endpoints, Perimeter's own
groups; who is attached where, and moving them.

Kept apart from ``adapters/ec2.py`` (security-group rules, SgGuard's hot path) because the
default-SG migration and the model-posture checks read other resources and the migration writes
things SgGuard never does: it creates groups and changes attachments. Lookups use filters
rather than ids, so a resource deleted since the event is simply absent instead of failing the
whole call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from perimeter.adapters.ec2 import error_code
from perimeter.core.rules import Rule, rule_from_api_rule, rules_of_group
from perimeter.default_groups.plan import DefaultGroup, Eni, eni_from_api

DUPLICATE = {"InvalidPermission.Duplicate"}
ENI_GONE = {"InvalidNetworkInterfaceID.NotFound", "InvalidNetworkInterfaceId.NotFound"}
#: The audit id of the migration that created a Perimeter group (interim or quarantine).
CREATED_BY_TAG = "perimeter:created-by"


@dataclass(frozen=True, slots=True)
class GroupInfo:
    group_id: str
    name: str
    vpc_id: str
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_default(self) -> bool:
        return self.name == "default"


class Ec2NetworkAdapter:
    def __init__(self, client: Any) -> None:
        self._ec2 = client

    # --- reads -------------------------------------------------------------------------
    def _enis(self, filters: list[dict[str, Any]]) -> list[Eni]:
        out: list[Eni] = []
        for page in self._ec2.get_paginator("describe_network_interfaces").paginate(Filters=filters):
            out.extend(eni_from_api(raw) for raw in page.get("NetworkInterfaces", []))
        return out

    def enis(self, eni_ids: Sequence[str] = (), instance_ids: Sequence[str] = ()) -> list[Eni]:
        """The ENIs an event names (one call), by ENI id or else by attached instance."""
        if eni_ids:
            return self._enis([{"Name": "network-interface-id", "Values": list(eni_ids)}])
        if instance_ids:
            return self._enis([{"Name": "attachment.instance-id", "Values": list(instance_ids)}])
        return []

    def dependants(self, group_id: str) -> list[Eni]:
        """Every ENI, of any kind, that uses the group."""
        return self.enis_in_groups([group_id])

    def enis_in_groups(self, group_ids: Iterable[str]) -> list[Eni]:
        """Every ENI that uses any of the groups (one paginated call)."""
        ids = sorted(set(group_ids))
        return self._enis([{"Name": "group-id", "Values": ids}]) if ids else []

    def rules_referencing(self, group_id: str) -> list[Rule]:
        """Rules of other groups whose source (ingress) or destination (egress) is this group:
        the traffic that follows its members. Two filtered reads, one per direction."""
        out: dict[Any, Rule] = {}
        for name, egress in (("ip-permission.group-id", False), ("egress.ip-permission.group-id", True)):
            paginator = self._ec2.get_paginator("describe_security_groups")
            for page in paginator.paginate(Filters=[{"Name": name, "Values": [group_id]}]):
                for g in page.get("SecurityGroups", []):
                    if g["GroupId"] == group_id:
                        continue  # the group's own self-reference moves with it (rewritten)
                    for rule in rules_of_group(g):
                        if rule.egress == egress and rule.referenced_group_id == group_id:
                            out.setdefault(rule.key, rule)
        return list(out.values())

    def subnet_vpcs(self, subnet_ids: Iterable[str]) -> dict[str, str]:
        """Subnet id -> VPC id; subnets that no longer exist are left out."""
        ids = sorted(set(subnet_ids))
        if not ids:
            return {}
        resp = self._ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": ids}])
        return {s["SubnetId"]: s["VpcId"] for s in resp.get("Subnets", [])}

    def endpoint_services(self, vpc_id: str) -> set[str]:
        """Service names of the VPC's interface endpoints that are available (or pending)."""
        names: set[str] = set()
        paginator = self._ec2.get_paginator("describe_vpc_endpoints")
        for page in paginator.paginate(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]):
            for ep in page.get("VpcEndpoints", []):
                state = str(ep.get("State", "available")).lower()
                interface = ep.get("VpcEndpointType", "Interface") == "Interface"
                if interface and state in ("available", "pending"):
                    names.add(str(ep.get("ServiceName", "")))
        return names

    def endpoint_enis(self, endpoint_ids: Sequence[str]) -> list[str] | None:
        """The ENIs of these VPC endpoints (``[]`` for gateway endpoints; ``None``: gone)."""
        try:
            resp = self._ec2.describe_vpc_endpoints(VpcEndpointIds=list(endpoint_ids))
        except ClientError as exc:
            if error_code(exc) in ("InvalidVpcEndpointId.NotFound", "InvalidVpcEndpointId.Malformed"):
                return None
            raise
        found = resp.get("VpcEndpoints", [])
        if not found:
            return None
        return [str(e) for ep in found for e in ep.get("NetworkInterfaceIds", [])]

    def launch_template_versions(self, template_id: str | None, name: str | None) -> list[dict[str, Any]]:
        """The versions launches use (``$Default``, ``$Latest``), once each; ``[]``: the template
        is gone."""
        ref = {"LaunchTemplateId": template_id} if template_id else {"LaunchTemplateName": name}
        try:
            resp = self._ec2.describe_launch_template_versions(**ref, Versions=["$Default", "$Latest"])
        except ClientError as exc:
            if error_code(exc) in (
                "InvalidLaunchTemplateId.NotFound",
                "InvalidLaunchTemplateName.NotFoundException",
                "InvalidLaunchTemplateId.VersionNotFound",
            ):
                return []
            raise
        seen: dict[int, dict[str, Any]] = {}
        for v in resp.get("LaunchTemplateVersions", []):
            seen.setdefault(int(v.get("VersionNumber", 0)), v)
        return [seen[n] for n in sorted(seen)]

    def groups(self, group_ids: Iterable[str]) -> dict[str, GroupInfo]:
        ids = sorted(set(group_ids))
        if not ids:
            return {}
        resp = self._ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": ids}])
        return {g["GroupId"]: _info(g) for g in resp.get("SecurityGroups", [])}

    def find_group(self, vpc_id: str, name: str) -> GroupInfo | None:
        resp = self._ec2.describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": [name]}]
        )
        groups = resp.get("SecurityGroups", [])
        return _info(groups[0]) if groups else None

    def group_rules(self, group_id: str) -> list[Rule]:
        """Every rule of a group, with its rule id (what a revoke by id needs)."""
        out = []
        paginator = self._ec2.get_paginator("describe_security_group_rules")
        for page in paginator.paginate(Filters=[{"Name": "group-id", "Values": [group_id]}]):
            out.extend(rule_from_api_rule(r) for r in page.get("SecurityGroupRules", []))
        return out

    def default_group(self, vpc_id: str) -> DefaultGroup | None:
        """The VPC's default group and its rules: two calls."""
        info = self.find_group(vpc_id, "default")
        if info is None:
            return None
        return DefaultGroup(info.group_id, vpc_id, tuple(self.group_rules(info.group_id)), info.tags)

    # --- writes ------------------------------------------------------------------------
    def ensure_group(
        self,
        vpc_id: str,
        name: str,
        description: str,
        tags: Mapping[str, str],
        *,
        created_by: str | None = None,
    ) -> tuple[str, bool]:
        """Find or create a group by name (names are unique per VPC, so a retry finds the
        first run's group). Returns (group id, created by ``created_by``). A group created
        for ``created_by`` (an audit id) carries it as the tag ``perimeter:created-by``: a
        retry after a crash right after the create finds the group and still knows it made it
        (a restore then deletes it), while a group that was there before stays not created."""
        if created_by:
            tags = {**tags, CREATED_BY_TAG: created_by}
        found = self.find_group(vpc_id, name)
        if found:
            return found.group_id, bool(created_by) and found.tags.get(CREATED_BY_TAG) == created_by
        try:
            resp = self._ec2.create_security_group(
                GroupName=name,
                Description=description,
                VpcId=vpc_id,
                TagSpecifications=[
                    {
                        "ResourceType": "security-group",
                        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                    }
                ],
            )
        except ClientError as exc:
            if error_code(exc) != "InvalidGroup.Duplicate":
                raise
            found = self.find_group(vpc_id, name)
            if found is None:
                raise
            return found.group_id, bool(created_by) and found.tags.get(CREATED_BY_TAG) == created_by
        return str(resp["GroupId"]), True

    def authorize(self, group_id: str, rules: Sequence[Rule]) -> None:
        """Add rules, one call per direction; a rule already there counts as added."""
        for egress in (False, True):
            batch = [r for r in rules if bool(r.egress) == egress]
            if not batch:
                continue
            call = (
                self._ec2.authorize_security_group_egress
                if egress
                else self._ec2.authorize_security_group_ingress
            )
            try:
                call(GroupId=group_id, IpPermissions=[r.to_permission() for r in batch])
            except ClientError as exc:
                if error_code(exc) not in DUPLICATE:
                    raise
                for rule in batch:  # settle each rule on its own: only the duplicates may fail
                    try:
                        call(GroupId=group_id, IpPermissions=[rule.to_permission()])
                    except ClientError as inner:
                        if error_code(inner) not in DUPLICATE:
                            raise

    def revoke_by_id(self, group_id: str, rules: Sequence[Rule]) -> None:
        for egress in (False, True):
            ids = [r.rule_id for r in rules if bool(r.egress) == egress and r.rule_id]
            if ids:
                call = (
                    self._ec2.revoke_security_group_egress
                    if egress
                    else self._ec2.revoke_security_group_ingress
                )
                call(GroupId=group_id, SecurityGroupRuleIds=ids)

    def in_use(self, group_id: str) -> bool:
        resp = self._ec2.describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [group_id]}])
        return bool(resp.get("NetworkInterfaces"))

    def set_groups(self, eni_id: str, group_ids: Sequence[str]) -> bool:
        """Replace an ENI's groups. Refuses an empty list (an ENI always keeps a group);
        returns False when the ENI no longer exists."""
        if not group_ids:
            raise ValueError(f"refusing to leave {eni_id} without a security group")
        try:
            self._ec2.modify_network_interface_attribute(NetworkInterfaceId=eni_id, Groups=list(group_ids))
        except ClientError as exc:
            if error_code(exc) in ENI_GONE:
                return False
            raise
        return True


def _info(g: Mapping[str, Any]) -> GroupInfo:
    return GroupInfo(
        group_id=str(g["GroupId"]),
        name=str(g.get("GroupName", "")),
        vpc_id=str(g.get("VpcId", "")),
        tags={t["Key"]: t.get("Value", "") for t in g.get("Tags", []) or []},
    )
