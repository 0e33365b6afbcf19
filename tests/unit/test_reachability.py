"""PER-NET-1's evaluation as tables (pure): each hop from the internet to a model ENI, address
sets intersected hop by hop, the first closed hop named. Inputs are the Describe responses'
shapes (what NetGuard and the sweep read)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from perimeter.network.reachability import evaluate, issue_of, model_enis, network_from_api
from perimeter.policy import load_default_policy

VPC, IGW, RTB, SUBNET, ACL, SG, ENI = "vpc-1", "igw-1", "rtb-1", "subnet-1", "acl-1", "sg-1", "eni-1"
POLICY = load_default_policy()


def _entry(
    n: int, egress: bool, action: str, cidr: str = "0.0.0.0/0", proto: str = "-1", ports: Any = None
) -> dict[str, Any]:
    e: dict[str, Any] = {"RuleNumber": n, "Egress": egress, "RuleAction": action, "Protocol": proto}
    e["Ipv6CidrBlock" if ":" in cidr else "CidrBlock"] = cidr
    if ports:
        e["PortRange"] = {"From": ports[0], "To": ports[1]}
    return e


def _world(**over: Any) -> dict[str, Any]:
    """Every hop open: tcp/8080 from the world to a model-tier ENI with an Elastic IP."""
    w: dict[str, Any] = {
        "gateways": [{"InternetGatewayId": IGW, "Attachments": [{"VpcId": VPC, "State": "available"}]}],
        "route_tables": [
            {
                "RouteTableId": "rtb-main",
                "VpcId": VPC,
                "Associations": [{"Main": True, "RouteTableAssociationId": "rtbassoc-main"}],
                "Routes": [{"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local"}],
            },
            {
                "RouteTableId": RTB,
                "VpcId": VPC,
                "Associations": [{"SubnetId": SUBNET, "RouteTableAssociationId": "rtbassoc-1"}],
                "Routes": [
                    {"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local"},
                    {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": IGW, "State": "active"},
                    {"DestinationIpv6CidrBlock": "::/0", "GatewayId": IGW, "State": "active"},
                ],
            },
        ],
        "acls": [
            {
                "NetworkAclId": ACL,
                "VpcId": VPC,
                "IsDefault": True,
                "Associations": [{"SubnetId": SUBNET}],
                "Entries": [
                    _entry(100, False, "allow"),
                    _entry(100, True, "allow"),
                    _entry(101, False, "allow", "::/0"),
                    _entry(101, True, "allow", "::/0"),
                    _entry(32767, False, "deny"),
                    _entry(32767, True, "deny"),
                ],
            }
        ],
        "subnets": [{"SubnetId": SUBNET, "VpcId": VPC, "MapPublicIpOnLaunch": False}],
        "enis": [
            {
                "NetworkInterfaceId": ENI,
                "VpcId": VPC,
                "SubnetId": SUBNET,
                "Groups": [{"GroupId": SG}],
                "Description": "vLLM server",
                "Association": {
                    "PublicIp": "54.1.2.3",
                    "AllocationId": "eipalloc-1",
                    "AssociationId": "eipassoc-1",
                },
            }
        ],
        "groups": [
            {
                "GroupId": SG,
                "VpcId": VPC,
                "Tags": [{"Key": "perimeter:tier", "Value": "model"}],
                "IpPermissions": [
                    {
                        "IpProtocol": "tcp",
                        "FromPort": 8080,
                        "ToPort": 8080,
                        "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                    }
                ],
            }
        ],
    }
    w.update(over)
    return w


def _judge(w: dict[str, Any]) -> Any:
    [r] = evaluate(network_from_api(VPC, **w), POLICY)
    return r


def _routes(w: dict[str, Any], routes: list[dict[str, Any]]) -> dict[str, Any]:
    w = copy.deepcopy(w)
    w["route_tables"][1]["Routes"] = [{"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local"}, *routes]
    return w


def _acl(w: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    w = copy.deepcopy(w)
    w["acls"][0]["Entries"] = entries
    return w


def _sg(w: dict[str, Any], perms: list[dict[str, Any]]) -> dict[str, Any]:
    w = copy.deepcopy(w)
    w["groups"][0]["IpPermissions"] = perms
    return w


def _tcp(port: int, *cidrs: str) -> dict[str, Any]:
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": c} for c in cidrs]}


def test_every_hop_open_names_the_path_in_order() -> None:
    r = _judge(_world())
    assert r.reachable and r.version == 4 and r.ports == "tcp/8080"
    assert [h.kind for h in r.hops] == [
        "internet-gateway",
        "route-table",
        "subnet",
        "public-address",
        "network-acl-inbound",
        "network-acl-outbound",
        "security-group",
    ]
    assert [h.resource_id for h in r.hops] == [IGW, RTB, "rtbassoc-1", "54.1.2.3", ACL, ACL, SG]
    issue = issue_of(r, account="123456789012", region="us-east-1")
    assert issue.control_id == "PER-NET-1" and issue.resource.short_id == ENI and issue.score == 90
    assert issue.evidence["perimeter/association_id"] == "eipassoc-1"
    assert issue.evidence["perimeter/route_table_association"] == "rtbassoc-1"
    assert "tcp/8080 from 0.0.0.0/0" in issue.chain[-1]


@pytest.mark.parametrize(
    ("world", "kind"),
    [
        (_world(gateways=[]), "internet-gateway"),
        # a gateway of another VPC, or one detaching
        (
            _world(
                gateways=[
                    {"InternetGatewayId": IGW, "Attachments": [{"VpcId": "vpc-2", "State": "available"}]}
                ]
            ),
            "internet-gateway",
        ),
        (_routes(_world(), []), "route-table"),
        # the default route goes to a NAT gateway: the internet cannot come in through it
        (_routes(_world(), [{"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-1"}]), "route-table"),
        # a blackhole route to the gateway carries nothing
        (
            _routes(
                _world(), [{"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": IGW, "State": "blackhole"}]
            ),
            "route-table",
        ),
        # longest prefix wins: two /1s to a firewall ENI hide the default route to the gateway
        (
            _routes(
                _world(),
                [
                    {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": IGW},
                    {"DestinationCidrBlock": "0.0.0.0/1", "NetworkInterfaceId": "eni-fw"},
                    {"DestinationCidrBlock": "128.0.0.0/1", "NetworkInterfaceId": "eni-fw"},
                ],
            ),
            "route-table",
        ),
        # no public address at all
        (_world(enis=[{**_world()["enis"][0], "Association": None}]), "public-address"),
        # an earlier deny wins over a later allow (first match by rule number)
        (
            _acl(
                _world(),
                [
                    _entry(50, False, "deny", proto="6", ports=(8080, 8080)),
                    _entry(100, False, "allow"),
                    _entry(100, True, "allow"),
                ],
            ),
            "network-acl-inbound",
        ),
        # replies cannot leave: no outbound rule to the ephemeral ports
        (
            _acl(
                _world(),
                [_entry(100, False, "allow"), _entry(100, True, "allow", proto="6", ports=(443, 443))],
            ),
            "network-acl-outbound",
        ),
        # the group admits only the VPC, or another group
        (_sg(_world(), [_tcp(8080, "10.0.0.0/16")]), "security-group"),
        (
            _sg(
                _world(),
                [
                    {
                        "IpProtocol": "tcp",
                        "FromPort": 8080,
                        "ToPort": 8080,
                        "UserIdGroupPairs": [{"GroupId": "sg-app"}],
                    }
                ],
            ),
            "security-group",
        ),
    ],
    ids=[
        "no-gateway",
        "other-vpcs-gateway",
        "no-route",
        "nat-route",
        "blackhole",
        "longest-prefix",
        "no-public-ip",
        "acl-deny-first",
        "acl-no-return",
        "sg-vpc-only",
        "sg-group-reference",
    ],
)
def test_the_first_closed_hop_is_named(world: dict[str, Any], kind: str) -> None:
    r = _judge(world)
    assert not r.reachable and r.closed is not None and r.closed.kind == kind, r


def test_an_allow_before_a_deny_and_a_deny_on_another_port_leave_it_open() -> None:
    entries = [
        _entry(40, False, "deny", proto="6", ports=(22, 22)),
        _entry(50, False, "allow", proto="6", ports=(8000, 9000)),
        _entry(60, False, "deny"),
        _entry(100, True, "allow", proto="6", ports=(32768, 60999)),
    ]
    assert _judge(_acl(_world(), entries)).reachable


def test_the_union_of_routes_is_the_world_but_disjoint_halves_are_not() -> None:
    halves = [
        {"DestinationCidrBlock": "0.0.0.0/1", "GatewayId": IGW},
        {"DestinationCidrBlock": "128.0.0.0/1", "GatewayId": IGW},
    ]
    assert _judge(_routes(_world(), halves)).reachable
    # routed: the lower half; the group admits only the upper half: what is left is nothing
    lower = _routes(_world(), halves[:1])
    r = _judge(_sg(lower, [_tcp(8080, "128.0.0.0/1")]))
    assert not r.reachable and r.closed is not None and r.closed.kind == "security-group"
    # each half alone is half the world (above world_share): with a matching group, reachable
    assert _judge(_sg(lower, [_tcp(8080, "0.0.0.0/1")])).reachable


def test_the_main_table_serves_a_subnet_without_an_explicit_association() -> None:
    w = copy.deepcopy(_world())
    w["route_tables"][1]["Associations"] = []
    r = _judge(w)
    assert not r.reachable and r.closed is not None and r.closed.resource_id == "rtb-main"
    w["route_tables"][0]["Routes"].append({"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": IGW})
    r = _judge(w)
    assert r.reachable and "main route table" in r.hops[2].text


def test_map_public_ip_on_launch_is_latent_and_never_for_a_service_eni() -> None:
    eni = {**_world()["enis"][0], "Association": None}
    w = _world(enis=[eni], subnets=[{"SubnetId": SUBNET, "VpcId": VPC, "MapPublicIpOnLaunch": True}])
    r = _judge(w)
    assert r.reachable and r.latent
    assert issue_of(r, account="1", region="us-east-1").score == 60
    w["enis"][0]["RequesterManaged"] = True
    r = _judge(w)
    assert not r.reachable and r.closed is not None and r.closed.kind == "public-address"


def test_ipv6_path() -> None:
    eni = {**_world()["enis"][0], "Association": None, "Ipv6Addresses": [{"Ipv6Address": "2600:1f18::10"}]}
    w = _sg(
        _world(enis=[eni]),
        [{"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}],
    )
    r = _judge(w)
    assert r.reachable and r.version == 6 and r.hops[3].resource_id == "2600:1f18::10"


def test_all_traffic_from_the_world_is_reachable_on_tcp_and_udp() -> None:
    r = _judge(_sg(_world(), [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]))
    assert r.reachable and r.ports == "tcp/all ports, udp/all ports"


def test_which_enis_are_the_model_tier() -> None:
    base = _world()["enis"][0]
    plain = {"GroupId": "sg-plain", "VpcId": VPC, "Tags": [], "IpPermissions": []}
    enis = [
        {**base, "NetworkInterfaceId": "eni-model"},
        {**base, "NetworkInterfaceId": "eni-app", "Groups": [{"GroupId": "sg-plain"}]},
        {
            **base,
            "NetworkInterfaceId": "eni-sm",
            "Groups": [{"GroupId": "sg-plain"}],
            "RequesterManaged": True,
            "RequesterId": "AROAEXAMPLE:SageMaker",
            "Description": "SageMaker endpoint deepseek-r1",
        },
        {**base, "NetworkInterfaceId": "eni-other-vpc", "VpcId": "vpc-2"},
    ]
    net = network_from_api(VPC, **_world(enis=enis, groups=[*_world()["groups"], plain]))
    found = {e.eni_id: e.why_model for e in model_enis(net, POLICY)}
    assert set(found) == {"eni-model", "eni-sm"}
    assert "SageMaker" in found["eni-sm"] and SG in found["eni-model"]
    # a group a model names is the model tier whatever its tags (as the sweep judges it)
    assert "eni-app" in {e.eni_id for e in model_enis(net, POLICY, model_groups={"sg-plain"})}


def test_enis_sharing_a_subnet_and_groups_are_each_told_their_own_path() -> None:
    """The inner walk is shared (memo); each ENI's own hops (its address) are its own."""
    base = _world()["enis"][0]
    enis = [
        {**base, "NetworkInterfaceId": "eni-a", "Association": {"PublicIp": "54.1.2.3"}},
        {**base, "NetworkInterfaceId": "eni-b", "Association": {"PublicIp": "54.9.9.9"}},
        {**base, "NetworkInterfaceId": "eni-c", "Association": None},
    ]
    rs = {r.eni.eni_id: r for r in evaluate(network_from_api(VPC, **_world(enis=enis)), POLICY)}
    assert rs["eni-a"].reachable and rs["eni-b"].reachable and not rs["eni-c"].reachable
    assert (rs["eni-a"].hops[3].resource_id, rs["eni-b"].hops[3].resource_id) == ("54.1.2.3", "54.9.9.9")
    assert rs["eni-a"].hops[4:] == rs["eni-b"].hops[4:]
