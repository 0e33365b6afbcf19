"""VPC reads for the model path: which VPC a subnet is in, which interface endpoints a VPC has,
which ENIs share a security group. Describe calls only; nothing here writes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from perimeter.adapters.ec2 import error_code


@dataclass(frozen=True, slots=True)
class Eni:
    eni_id: str
    description: str
    interface_type: str
    group_ids: tuple[str, ...]


class NetworkAdapter:
    def __init__(self, client: Any) -> None:
        self._ec2 = client

    def subnet_vpcs(self, subnet_ids: Iterable[str]) -> dict[str, str]:
        """Subnet id -> VPC id; subnets that no longer exist are left out."""
        ids = sorted(set(subnet_ids))
        if not ids:
            return {}
        try:
            resp = self._ec2.describe_subnets(SubnetIds=ids)
        except ClientError as exc:
            if error_code(exc) != "InvalidSubnetID.NotFound":
                raise
            if len(ids) == 1:
                return {}
            # One gone subnet fails the batch: settle each on its own.
            out: dict[str, str] = {}
            for sid in ids:
                out.update(self.subnet_vpcs([sid]))
            return out
        return {s["SubnetId"]: s["VpcId"] for s in resp.get("Subnets", [])}

    def endpoint_services(self, vpc_id: str) -> set[str]:
        """Service names of the VPC's interface endpoints that are available (or pending)."""
        names: set[str] = set()
        paginator = self._ec2.get_paginator("describe_vpc_endpoints")
        for page in paginator.paginate(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}]):
            for ep in page.get("VpcEndpoints", []):
                state = str(ep.get("State", "available")).lower()
                if ep.get("VpcEndpointType", "Interface") == "Interface" and state in (
                    "available",
                    "pending",
                ):
                    names.add(str(ep.get("ServiceName", "")))
        return names

    def enis_with_groups(self, group_ids: Iterable[str]) -> list[Eni]:
        ids = sorted(set(group_ids))
        if not ids:
            return []
        out: list[Eni] = []
        paginator = self._ec2.get_paginator("describe_network_interfaces")
        for page in paginator.paginate(Filters=[{"Name": "group-id", "Values": ids}]):
            for ni in page.get("NetworkInterfaces", []):
                out.append(
                    Eni(
                        eni_id=ni["NetworkInterfaceId"],
                        description=str(ni.get("Description", "")),
                        interface_type=str(ni.get("InterfaceType", "interface")),
                        group_ids=tuple(g["GroupId"] for g in ni.get("Groups", [])),
                    )
                )
        return out

    def group_tags(self, group_ids: Iterable[str]) -> dict[str, dict[str, str]]:
        ids = sorted(set(group_ids))
        if not ids:
            return {}
        out: dict[str, dict[str, str]] = {}
        try:
            resp = self._ec2.describe_security_groups(GroupIds=ids)
        except ClientError as exc:
            if error_code(exc) not in ("InvalidGroup.NotFound", "InvalidGroupId.NotFound"):
                raise
            if len(ids) == 1:
                return {}
            # A group deleted since the ENI listing fails the batch: settle each on its own.
            for gid in ids:
                out.update(self.group_tags([gid]))
            return out
        for g in resp.get("SecurityGroups", []):
            out[g["GroupId"]] = {t["Key"]: t.get("Value", "") for t in g.get("Tags", [])}
        return out
