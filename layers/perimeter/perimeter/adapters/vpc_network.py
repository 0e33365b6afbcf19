"""EC2 reads for PER-NET-1: which VPC an event's resource is in, and the VPC's whole network.

Every read is a Describe filtered to one resource or one VPC (a resource deleted since the
event is simply absent); the six listings of a VPC are independent and run together on the
container's pool. Read-only: NetGuard never changes the network it judges. Each call is
written out (no ``getattr``), so tests/reference/test_boto_calls.py checks it against
botocore's model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import ClientError

from perimeter.adapters.ec2 import error_code


def _by(name: str, value: str) -> list[dict[str, Any]]:
    return [{"Name": name, "Values": [value]}]


class VpcNetworkAdapter:
    def __init__(self, client: Any) -> None:
        self._ec2 = client

    @staticmethod
    def _collect(pages: Iterator[dict[str, Any]], key: str) -> list[dict[str, Any]]:
        return [item for page in pages for item in page.get(key, [])]

    def _pages(self, operation: str, key: str, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ec2 = self._ec2
        if operation == "describe_internet_gateways":
            pages = ec2.get_paginator("describe_internet_gateways")
            return self._collect(pages.paginate(Filters=filters), key)
        if operation == "describe_route_tables":
            pages = ec2.get_paginator("describe_route_tables")
            return self._collect(pages.paginate(Filters=filters), key)
        if operation == "describe_network_acls":
            pages = ec2.get_paginator("describe_network_acls")
            return self._collect(pages.paginate(Filters=filters), key)
        if operation == "describe_subnets":
            pages = ec2.get_paginator("describe_subnets")
            return self._collect(pages.paginate(Filters=filters), key)
        if operation == "describe_network_interfaces":
            pages = ec2.get_paginator("describe_network_interfaces")
            return self._collect(pages.paginate(Filters=filters), key)
        if operation == "describe_security_groups":
            pages = ec2.get_paginator("describe_security_groups")
            return self._collect(pages.paginate(Filters=filters), key)
        raise ValueError(operation)

    def _vpc_ids(self, items: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> list[str]:
        return list(dict.fromkeys(str(i["VpcId"]) for i in items if i.get("VpcId")))

    def vpcs_of(self, kind: str, resource_id: str) -> list[str]:
        """The VPC holding the resource an event names (none when it is gone)."""
        if kind == "vpc":
            return [resource_id]
        if kind == "route-table":
            return self._vpc_ids(
                self._pages("describe_route_tables", "RouteTables", _by("route-table-id", resource_id))
            )
        if kind == "subnet":
            return self._vpc_ids(self._pages("describe_subnets", "Subnets", _by("subnet-id", resource_id)))
        if kind == "network-interface":
            return self._vpc_ids(
                self._pages(
                    "describe_network_interfaces",
                    "NetworkInterfaces",
                    _by("network-interface-id", resource_id),
                )
            )
        if kind == "instance":
            return self._vpc_ids(
                self._pages(
                    "describe_network_interfaces",
                    "NetworkInterfaces",
                    _by("attachment.instance-id", resource_id),
                )
            )
        if kind == "network-acl":
            # By id, not by the ``network-acl-id`` filter, which moto lacks; an id that no longer
            # exists is AWS's InvalidNetworkAclID.NotFound: gone.
            try:
                found = self._ec2.describe_network_acls(NetworkAclIds=[resource_id]).get("NetworkAcls", [])
            except ClientError as exc:
                if not error_code(exc).endswith(".NotFound"):
                    raise
                found = []
            return self._vpc_ids(found)
        raise ValueError(f"no VPC lookup for {kind}")

    def region(self, in_parallel: Callable[..., list[Any]]) -> dict[str, list[dict[str, Any]]]:
        """The sweep's reads, region-wide: the internet gateways first; only when one is attached
        to a VPC, the route tables, network ACLs, subnets and ENIs together (four listings,
        whatever the number of VPCs). Groups come from the sweep's own listing."""
        pages = self._ec2.get_paginator("describe_internet_gateways")
        gateways = self._collect(pages.paginate(), "InternetGateways")
        if not any(a.get("VpcId") for g in gateways for a in g.get("Attachments", [])):
            return {"gateways": gateways, "route_tables": [], "acls": [], "subnets": [], "enis": []}
        tables, acls, subnets, enis = in_parallel(
            lambda: self._collect(self._ec2.get_paginator("describe_route_tables").paginate(), "RouteTables"),
            lambda: self._collect(self._ec2.get_paginator("describe_network_acls").paginate(), "NetworkAcls"),
            lambda: self._collect(self._ec2.get_paginator("describe_subnets").paginate(), "Subnets"),
            lambda: self._collect(
                self._ec2.get_paginator("describe_network_interfaces").paginate(), "NetworkInterfaces"
            ),
        )
        return {"gateways": gateways, "route_tables": tables, "acls": acls, "subnets": subnets, "enis": enis}

    def network(self, vpc_id: str, in_parallel: Callable[..., list[Any]]) -> dict[str, list[dict[str, Any]]]:
        """The VPC's gateways, route tables, ACLs, subnets, ENIs and groups: six filtered reads,
        together."""
        vpc = _by("vpc-id", vpc_id)
        gateways, tables, acls, subnets, enis, groups = in_parallel(
            lambda: self._pages(
                "describe_internet_gateways", "InternetGateways", _by("attachment.vpc-id", vpc_id)
            ),
            lambda: self._pages("describe_route_tables", "RouteTables", vpc),
            lambda: self._pages("describe_network_acls", "NetworkAcls", vpc),
            lambda: self._pages("describe_subnets", "Subnets", vpc),
            lambda: self._pages("describe_network_interfaces", "NetworkInterfaces", vpc),
            lambda: self._pages("describe_security_groups", "SecurityGroups", vpc),
        )
        return {
            "gateways": gateways,
            "route_tables": tables,
            "acls": acls,
            "subnets": subnets,
            "enis": enis,
            "groups": groups,
        }
