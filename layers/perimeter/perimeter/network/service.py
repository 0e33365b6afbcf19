"""The reachability event path (PER-NET-1): NetGuard.

The calls that open a hop between the internet and a model (AttachInternetGateway, CreateRoute,
ReplaceRoute, AssociateRouteTable, ReplaceRouteTableAssociation, ReplaceNetworkAclAssociation,
ModifySubnetAttribute MapPublicIpOnLaunch, CreateNetworkAclEntry, ReplaceNetworkAclEntry,
AssociateAddress) and the calls that close one (DetachInternetGateway, DeleteRoute,
DisassociateRouteTable, DeleteNetworkAclEntry, DisassociateAddress) all lead to the same
evaluation: the event names a resource, that resource names a VPC, and every model-tier ENI of
the VPC is judged on the VPC's whole current network (``reachability``). A reachable ENI gets
(or keeps) its FAILED finding naming the path hop by hop; an ENI whose path is closed resolves
its finding, whichever call closed it. Detect only: nothing is ever written to EC2.

Reads: one Describe to find the VPC when the event does not name it, then six filtered
Describes of the VPC together (gateways, route tables, ACLs, subnets, ENIs, groups).
DisassociateAddress and DisassociateRouteTable name only the association, which no longer
exists: the VPCs are those of Perimeter's active PER-NET-1 findings whose path named it (a
path that was not reported has nothing to resolve).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from perimeter.core.arns import partition_of
from perimeter.core.events import ApiCall, MalformedEvent, unwrap
from perimeter.core.guard import admit
from perimeter.core.runtime import Runtime
from perimeter.core.telemetry import logger
from perimeter.network.reachability import closed_reason, eni_resource, evaluate, issue_of, network_from_api
from perimeter.posture.act import report_evaluation
from perimeter.posture.controls import Evaluation

#: event name -> (kind of id it names, request fields that may hold it, in order)
SUBJECTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "AttachInternetGateway": ("vpc", ("vpcId",)),
    "DetachInternetGateway": ("vpc", ("vpcId",)),
    "CreateRoute": ("route-table", ("routeTableId",)),
    "ReplaceRoute": ("route-table", ("routeTableId",)),
    "DeleteRoute": ("route-table", ("routeTableId",)),
    "AssociateRouteTable": ("route-table", ("routeTableId",)),
    "ReplaceRouteTableAssociation": ("route-table", ("routeTableId",)),
    "DisassociateRouteTable": ("route-association", ("associationId",)),
    "ModifySubnetAttribute": ("subnet", ("subnetId",)),
    "CreateNetworkAclEntry": ("network-acl", ("networkAclId",)),
    "ReplaceNetworkAclEntry": ("network-acl", ("networkAclId",)),
    "DeleteNetworkAclEntry": ("network-acl", ("networkAclId",)),
    "ReplaceNetworkAclAssociation": ("network-acl", ("networkAclId",)),
    "AssociateAddress": ("network-interface", ("networkInterfaceId",)),
    "DisassociateAddress": ("address", ("associationId", "publicIp")),
}
NET_EVENTS = frozenset(SUBJECTS)
#: EC2 resource ids (vpc-, rtb-, rtbassoc-, subnet-, acl-, eni-, i-, eipassoc-...): anything else
#: in a record is bad input, never sent to EC2 (an ACL id AWS cannot parse would fail the call)
_ID = re.compile(r"[a-z]+-[0-9a-f]{8,17}")


def subject_of(call: ApiCall) -> tuple[str, str]:
    """(kind, id) of the resource the call names.

    Raises:
        MalformedEvent: an event NetGuard does not handle, or one lacking the id its kind
            always carries.
    """
    spec = SUBJECTS.get(call.event_name)
    if spec is None:
        raise MalformedEvent(f"NetGuard does not handle event {call.event_name!r}")
    kind, fields = spec
    req = unwrap(call.request) if isinstance(call.request, Mapping) else {}
    if call.event_name == "AssociateAddress" and not req.get("networkInterfaceId") and req.get("instanceId"):
        instance = _text(req["instanceId"], "instanceId")
        if not _ID.fullmatch(instance):
            raise MalformedEvent(
                f"AssociateAddress: requestParameters.instanceId {instance[:64]!r} is not an id"
            )
        return "instance", instance
    for name in fields:
        value = req.get(name)
        if isinstance(value, str) and value:
            if name != "publicIp" and not _ID.fullmatch(value):
                raise MalformedEvent(
                    f"{call.event_name}: requestParameters.{name} {value[:64]!r} is not an id"
                )
            return kind, value
    raise MalformedEvent(f"{call.event_name}: requestParameters lacks {' or '.join(fields)}")


def _maps_public_ip(call: ApiCall) -> bool:
    req = unwrap(call.request) if isinstance(call.request, Mapping) else {}
    return "mapPublicIpOnLaunch" in req or "MapPublicIpOnLaunch" in req


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"requestParameters.{name} must be a non-empty string")
    return value


def _adapter(rt: Runtime) -> Any:
    from perimeter.adapters.vpc_network import VpcNetworkAdapter

    return VpcNetworkAdapter(rt.client("ec2"))


def vpc_evaluation(call: ApiCall, rt: Runtime, vpc_id: str, model_groups: Iterable[str] = ()) -> Evaluation:
    """PER-NET-1 on one VPC's whole current network: an issue per reachable model ENI, every
    model ENI covered (a closed path resolves its finding). The sweep's way in too."""
    ev = Evaluation()
    if rt.policy.mode("PER-NET-1") == "off":
        return ev
    raw = _adapter(rt).network(vpc_id, rt.in_parallel)
    _judge_network(call, rt, network_from_api(vpc_id, **raw), model_groups, ev)
    return ev


def _judge_network(call: ApiCall, rt: Runtime, net: Any, model_groups: Iterable[str], ev: Evaluation) -> None:
    for reach in evaluate(net, rt.policy, model_groups):
        resource = eni_resource(reach.eni, account=call.account, region=call.region, vpc_id=net.vpc_id)
        if reach.reachable:
            ev.issues.append(issue_of(reach, account=call.account, region=call.region))
        ev.cover("PER-NET-1", resource, closed_reason(reach))


def sweep_evaluation(
    call: ApiCall,
    rt: Runtime,
    groups: Sequence[Mapping[str, Any]],
    model_groups: Iterable[str] = (),
    revoked: Mapping[str, Sequence[str]] | None = None,
) -> Evaluation:
    """The sweep's way in: the same evaluation on every VPC with an internet gateway attached,
    from region-wide listings (``groups``: the sweep's own DescribeSecurityGroups, less the
    rules it has just ``revoked``, by ``Rule.describe()``). A model ENI
    elsewhere cannot be reached from the internet: its active finding is not raised again, and
    the sweep resolves it."""
    ev = Evaluation()
    if rt.policy.mode("PER-NET-1") == "off":
        return ev
    raw = _adapter(rt).region(rt.in_parallel)
    vpcs = dict.fromkeys(
        str(a["VpcId"]) for g in raw["gateways"] for a in g.get("Attachments", []) if a.get("VpcId")
    )
    for vpc in vpcs:
        net = replace(
            network_from_api(vpc, **raw, groups=groups),
            removed={g: frozenset(rules) for g, rules in (revoked or {}).items()},
        )
        _judge_network(call, rt, net, model_groups, ev)
    return ev


#: what a gone association was, as the findings' ProductFields name it
_FINDING_FIELDS = {
    "address": ("perimeter/association_id", "perimeter/public_ip"),
    "route-association": ("perimeter/route_table_association",),
}


def _vpcs_of_findings(call: ApiCall, rt: Runtime, kind: str, key: str) -> list[str]:
    """VPCs of the active PER-NET-1 findings whose path went through this (now removed)
    association: an address's association id or public IP, a subnet's explicit route-table
    association. AWS can no longer say where a removed association was; the finding can."""
    region, account = call.region, call.account
    product = f"arn:{partition_of(region)}:securityhub:{region}:{account}:product/{account}/default"
    vpcs = []
    for f in rt.securityhub.active_findings(product):
        fields = f.get("ProductFields") or {}
        if f.get("GeneratorId") == "PER-NET-1" and key in (fields.get(k) for k in _FINDING_FIELDS[kind]):
            vpcs.append(str(fields.get("perimeter/vpc", "")))
    return [v for v in dict.fromkeys(vpcs) if v]


def handle(event: Any, rt: Runtime, context: Any = None) -> dict[str, Any]:
    call, ignored = admit(event, rt.settings, routed=NET_EVENTS, kind="network-path")
    if ignored:
        return ignored
    if call.event_name == "ModifySubnetAttribute" and not _maps_public_ip(call):
        return {
            "status": "ignored",
            "reason": "ModifySubnetAttribute changed no MapPublicIpOnLaunch",
            "event_id": call.event_id,
        }
    kind, resource_id = subject_of(call)
    base: dict[str, Any] = {"event_id": call.event_id, "event_name": call.event_name, "subject": resource_id}
    if rt.policy.mode("PER-NET-1") == "off":
        return {"status": "compliant", **base, "vpcs": [], "gone": [], "reason": "PER-NET-1 is off"}
    if kind in _FINDING_FIELDS:
        vpcs = _vpcs_of_findings(call, rt, kind, resource_id)
    else:
        vpcs = _adapter(rt).vpcs_of(kind, resource_id)
    base["vpcs"] = vpcs
    if not vpcs:
        logger.info("nothing to judge", extra={"kind": kind, "resource": resource_id})
        gone = [] if kind in _FINDING_FIELDS else [f"{kind} {resource_id}"]
        return {"status": "resource-gone" if gone else "compliant", **base, "gone": gone}
    ev = Evaluation()
    for vpc in vpcs:
        ev.extend(vpc_evaluation(call, rt, vpc))
    base["enis"] = [c.resource.short_id for c in ev.covered]
    return report_evaluation(call, ev, rt, context, base=base, judged_what=vpcs, may_create=False)
