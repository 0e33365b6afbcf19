"""PER-NET-1 through the real NetGuard handler on moto: a model-tier ENI reachable from the
internet (gateway, route, public address, network ACL, group rule) gets a finding naming the
path hop by hop; the call that closes any hop resolves it; nothing is ever written to EC2.
Findings, ENIs and routes are read back through the API.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from model_support import ACCOUNT, Acct, make_account, sample


@pytest.fixture
def acct(monkeypatch: pytest.MonkeyPatch) -> Iterator[Acct]:
    yield from make_account(monkeypatch)


@dataclass
class Net:
    vpc: str
    igw: str
    subnet: str
    table: str
    assoc: str
    acl: str
    model_sg: str
    eni: str
    alloc: str
    eip_assoc: str


def _net(acct: Acct, *, attach: bool = True, world_port: int = 8080, tier: str = "model") -> Net:
    """A model server's ENI in a public subnet: every hop open (the gateway attached or not)."""
    ec2 = acct.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.30.1.0/24")["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    if attach:
        ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    assoc = ec2.associate_route_table(RouteTableId=table, SubnetId=subnet)["AssociationId"]
    sg = ec2.create_security_group(
        GroupName="vllm",
        Description="model server",
        VpcId=vpc,
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": "perimeter:tier", "Value": tier}]}
        ],
    )["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=sg,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": world_port,
                "ToPort": world_port,
                "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
            }
        ],
    )
    eni = ec2.create_network_interface(SubnetId=subnet, Groups=[sg], Description="vLLM server")[
        "NetworkInterface"
    ]["NetworkInterfaceId"]
    alloc = ec2.allocate_address(Domain="vpc")["AllocationId"]
    eip_assoc = ec2.associate_address(AllocationId=alloc, NetworkInterfaceId=eni)["AssociationId"]
    [acl] = ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["NetworkAcls"]
    return Net(vpc, igw, subnet, table, assoc, acl["NetworkAclId"], sg, eni, alloc, eip_assoc)


def _event(acct: Acct, name: str, request: dict[str, Any], response: dict[str, Any] | None = None) -> Any:
    return acct.event(name, "ec2.amazonaws.com", request, response or {"_return": True})


def _run(acct: Acct, event: Any) -> dict[str, Any]:
    return acct.run("net_guard", event)


def _fid(eni: str) -> str:
    return f"perimeter/PER-NET-1/{ACCOUNT}/us-east-1/{eni}"


def _finding(acct: Acct, eni: str) -> dict[str, Any] | None:
    return next((f for f in acct.findings() if f["Id"] == _fid(eni)), None)


def _state(f: dict[str, Any] | None) -> tuple[str, str] | None:
    return (f["Compliance"]["Status"], f["RecordState"]) if f else None


def test_attach_internet_gateway_names_the_whole_path_then_detach_resolves(acct: Acct) -> None:
    n = _net(acct, attach=False)
    ec2 = acct.client("ec2")
    ec2.attach_internet_gateway(InternetGatewayId=n.igw, VpcId=n.vpc)
    out = _run(acct, _event(acct, "AttachInternetGateway", {"internetGatewayId": n.igw, "vpcId": n.vpc}))
    assert out["status"] == "reported", out
    f = _finding(acct, n.eni)
    assert _state(f) == ("FAILED", "ACTIVE")
    assert f is not None
    text = f["Description"]
    # every hop, in the order a packet meets them
    hops = [n.igw, n.table, n.subnet, n.alloc, n.acl, "tcp/8080 from 0.0.0.0/0"]
    where = [text.index(h) for h in hops]
    assert where == sorted(where), text
    # the whole path, the fix and the event fit ASFF's 1024 characters (nothing clipped)
    assert "Fix: close one hop" in text and "Seen in AttachInternetGateway" in text and len(text) < 1024
    assert "tcp/8080" in f["ProductFields"]["perimeter/ports"]
    assert f["ProductFields"]["perimeter/path"].startswith(
        f"internet-gateway={n.igw} | route-table={n.table}"
    )
    assert f["Resources"][0]["Type"] == "AwsEc2NetworkInterface" and f["Resources"][0]["Id"].endswith(n.eni)
    assert f["Severity"]["Label"] == "CRITICAL"
    # detect only: the path is still there, nothing was changed
    assert ec2.describe_internet_gateways(InternetGatewayIds=[n.igw])["InternetGateways"][0]["Attachments"]
    assert acct.audit_records() == []

    ec2.detach_internet_gateway(InternetGatewayId=n.igw, VpcId=n.vpc)
    out = _run(acct, _event(acct, "DetachInternetGateway", {"internetGatewayId": n.igw, "vpcId": n.vpc}))
    f = _finding(acct, n.eni)
    assert _state(f) == ("PASSED", "ARCHIVED"), out
    assert f is not None and "no internet gateway attached" in f["Description"]


def test_an_earlier_deny_in_the_network_acl_closes_the_path(acct: Acct) -> None:
    n = _net(acct)
    ec2 = acct.client("ec2")
    # rule 50 denies tcp/8080 from anywhere before moto's default rule 100 allows everything
    ec2.create_network_acl_entry(
        NetworkAclId=n.acl,
        RuleNumber=50,
        Protocol="6",
        RuleAction="deny",
        Egress=False,
        CidrBlock="0.0.0.0/0",
        PortRange={"From": 8080, "To": 8080},
    )
    request = {
        "networkAclId": n.acl,
        "ruleNumber": 50,
        "egress": False,
        "ruleAction": "deny",
        "icmpTypeCode": {},
        "portRange": {"from": 8080, "to": 8080},
        "aclProtocol": "6",
        "cidrBlock": "0.0.0.0/0",
    }
    out = _run(acct, _event(acct, "CreateNetworkAclEntry", request))
    assert out["status"] == "compliant" and out["enis"] == [n.eni], out
    assert _finding(acct, n.eni) is None

    # the deny replaced by an allow (after moto's rule 100 it changes nothing; first match wins)
    ec2.replace_network_acl_entry(
        NetworkAclId=n.acl,
        RuleNumber=50,
        Protocol="6",
        RuleAction="allow",
        Egress=False,
        CidrBlock="0.0.0.0/0",
        PortRange={"From": 8080, "To": 8080},
    )
    out = _run(acct, _event(acct, "ReplaceNetworkAclEntry", {**request, "ruleAction": "allow"}))
    assert _state(_finding(acct, n.eni)) == ("FAILED", "ACTIVE"), out


def test_reply_path_denied_outbound_closes_the_path(acct: Acct) -> None:
    n = _net(acct)
    ec2 = acct.client("ec2")
    ec2.create_network_acl_entry(
        NetworkAclId=n.acl,
        RuleNumber=10,
        Protocol="-1",
        RuleAction="deny",
        Egress=True,
        CidrBlock="0.0.0.0/0",
    )
    request = {
        "networkAclId": n.acl,
        "ruleNumber": 10,
        "egress": True,
        "ruleAction": "deny",
        "aclProtocol": "-1",
        "cidrBlock": "0.0.0.0/0",
    }
    out = _run(acct, _event(acct, "CreateNetworkAclEntry", request))
    assert out["status"] == "compliant", out
    ec2.delete_network_acl_entry(NetworkAclId=n.acl, RuleNumber=10, Egress=True)
    out = _run(
        acct, _event(acct, "DeleteNetworkAclEntry", {"networkAclId": n.acl, "ruleNumber": 10, "egress": True})
    )
    assert out["status"] == "reported" and _state(_finding(acct, n.eni)) == ("FAILED", "ACTIVE")


def test_a_private_route_table_or_a_non_model_eni_is_not_reported(acct: Acct) -> None:
    n = _net(acct, tier="app")  # an app server: not the model tier
    ec2 = acct.client("ec2")
    out = _run(
        acct,
        _event(
            acct,
            "CreateRoute",
            {"routeTableId": n.table, "destinationCidrBlock": "0.0.0.0/0", "gatewayId": n.igw},
        ),
    )
    assert out["status"] == "compliant" and out["enis"] == [], out

    m = _net(acct)  # a model server, then its default route removed
    ec2.delete_route(RouteTableId=m.table, DestinationCidrBlock="0.0.0.0/0")
    out = _run(
        acct, _event(acct, "DeleteRoute", {"routeTableId": m.table, "destinationCidrBlock": "0.0.0.0/0"})
    )
    assert out["status"] == "compliant" and out["enis"] == [m.eni], out
    assert acct.findings() == []


def test_association_to_the_main_table_and_disassociate_address(acct: Acct) -> None:
    """The subnet leaves its private table for the main one, which routes to the gateway;
    then the Elastic IP is taken off and the finding resolves on DisassociateAddress."""
    n = _net(acct)
    ec2 = acct.client("ec2")
    ec2.delete_route(RouteTableId=n.table, DestinationCidrBlock="0.0.0.0/0")
    main = ec2.describe_route_tables(
        Filters=[{"Name": "vpc-id", "Values": [n.vpc]}, {"Name": "association.main", "Values": ["true"]}]
    )["RouteTables"][0]["RouteTableId"]
    ec2.create_route(RouteTableId=main, DestinationCidrBlock="0.0.0.0/0", GatewayId=n.igw)
    ec2.disassociate_route_table(AssociationId=n.assoc)
    out = _run(acct, _event(acct, "DisassociateRouteTable", {"associationId": n.assoc}))
    # the association is gone and no finding named it: nothing to resolve, nothing guessed
    assert out["status"] == "compliant" and out["vpcs"] == [], out
    out = _run(
        acct,
        _event(
            acct,
            "CreateRoute",
            {"routeTableId": main, "destinationCidrBlock": "0.0.0.0/0", "gatewayId": n.igw},
        ),
    )
    f = _finding(acct, n.eni)
    assert _state(f) == ("FAILED", "ACTIVE"), out
    assert f is not None and "main route table" in f["Description"]
    assert f["ProductFields"]["perimeter/association_id"] == n.eip_assoc

    ec2.disassociate_address(AssociationId=n.eip_assoc)
    out = _run(acct, _event(acct, "DisassociateAddress", {"associationId": n.eip_assoc}))
    assert out["vpcs"] == [n.vpc], out
    f = _finding(acct, n.eni)
    assert _state(f) == ("PASSED", "ARCHIVED")
    assert f is not None and "no public IPv4" in f["Description"]


def test_map_public_ip_on_launch_is_reported_as_the_next_launch_and_resolves(acct: Acct) -> None:
    n = _net(acct)
    ec2 = acct.client("ec2")
    ec2.disassociate_address(AssociationId=n.eip_assoc)
    ec2.modify_subnet_attribute(SubnetId=n.subnet, MapPublicIpOnLaunch={"Value": True})
    req = {"subnetId": n.subnet, "mapPublicIpOnLaunch": {"value": True}}
    out = _run(acct, _event(acct, "ModifySubnetAttribute", req))
    f = _finding(acct, n.eni)
    assert _state(f) == ("FAILED", "ACTIVE"), out
    assert f is not None and "MapPublicIpOnLaunch" in f["Description"] and f["Severity"]["Label"] == "MEDIUM"
    ec2.modify_subnet_attribute(SubnetId=n.subnet, MapPublicIpOnLaunch={"Value": False})
    _run(acct, _event(acct, "ModifySubnetAttribute", {**req, "mapPublicIpOnLaunch": {"value": False}}))
    assert _state(_finding(acct, n.eni)) == ("PASSED", "ARCHIVED")


def test_associate_address_sample_shape_and_duplicate_is_a_no_op(acct: Acct) -> None:
    n = _net(acct)
    event = sample("AssociateAddress--eip-on-model-eni.json")
    d = event["detail"]
    d["requestParameters"].update(allocationId=n.alloc, networkInterfaceId=n.eni)
    d["responseElements"]["associationId"] = n.eip_assoc
    out = _run(acct, event)
    assert out["status"] == "reported" and _state(_finding(acct, n.eni)) == ("FAILED", "ACTIVE")
    again = _run(acct, event)
    assert again == out  # the same event id: the stored result, nothing reported twice
    assert len(acct.messages()) == 1


def test_disassociate_route_table_resolves_the_finding_whose_path_named_it(acct: Acct) -> None:
    n = _net(acct)
    ec2 = acct.client("ec2")
    _run(
        acct,
        _event(
            acct,
            "AssociateRouteTable",
            {"routeTableId": n.table, "subnetId": n.subnet},
            {"associationId": n.assoc, "associationState": {"state": "associated"}},
        ),
    )
    f = _finding(acct, n.eni)
    assert _state(f) == ("FAILED", "ACTIVE")
    assert f is not None and f["ProductFields"]["perimeter/route_table_association"] == n.assoc
    ec2.disassociate_route_table(AssociationId=n.assoc)  # back to the main table: no gateway route
    out = _run(acct, _event(acct, "DisassociateRouteTable", {"associationId": n.assoc}))
    assert out["vpcs"] == [n.vpc], out
    f = _finding(acct, n.eni)
    assert _state(f) == ("PASSED", "ARCHIVED")
    assert f is not None and "has no route to the internet gateway" in f["Description"]


def test_another_subnet_attribute_is_ignored_and_reads_nothing(acct: Acct) -> None:
    n = _net(acct)
    out = _run(
        acct, _event(acct, "ModifySubnetAttribute", {"subnetId": n.subnet, "enableDns64": {"value": True}})
    )
    assert out["status"] == "ignored" and acct.findings() == []


def test_a_record_without_its_id_is_malformed(acct: Acct) -> None:
    from perimeter.core.events import MalformedEvent

    with pytest.raises(MalformedEvent, match="routeTableId"):
        _run(acct, _event(acct, "CreateRoute", {"destinationCidrBlock": "0.0.0.0/0"}))
    with pytest.raises(MalformedEvent, match="is not an id"):
        _run(acct, _event(acct, "CreateNetworkAclEntry", {"networkAclId": "acl-xyz; drop"}))


def test_associate_address_to_an_instance_judges_its_vpc(acct: Acct) -> None:
    """AssociateAddress names an instance, not an ENI: its ENIs name the VPC (no DescribeInstances)."""
    n = _net(acct)
    ec2 = acct.client("ec2")
    ec2.disassociate_address(AssociationId=n.eip_assoc)
    inst = ec2.run_instances(
        ImageId="ami-12345678",
        MinCount=1,
        MaxCount=1,
        InstanceType="g5.xlarge",
        SubnetId=n.subnet,
        SecurityGroupIds=[n.model_sg],
    )["Instances"][0]["InstanceId"]
    assoc = ec2.associate_address(AllocationId=n.alloc, InstanceId=inst)["AssociationId"]
    out = _run(
        acct,
        _event(
            acct, "AssociateAddress", {"allocationId": n.alloc, "instanceId": inst}, {"associationId": assoc}
        ),
    )
    assert out["status"] == "reported" and out["vpcs"] == [n.vpc], out
    [primary] = ec2.describe_network_interfaces(
        Filters=[{"Name": "attachment.instance-id", "Values": [inst]}]
    )["NetworkInterfaces"]
    assert _state(_finding(acct, primary["NetworkInterfaceId"])) == ("FAILED", "ACTIVE")
    # the standalone ENI lost nothing it had: it has no address now, so no finding was made for it
    assert _finding(acct, n.eni) is None
