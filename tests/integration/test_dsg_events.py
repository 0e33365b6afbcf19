"""The sample events in ``events/`` for DefaultSgGuard, through the real handler under moto.

Each sample names fixed ids (``vpc-0a1b...``, ``sg-0def...`` the default group, ``eni-0a...a1``
an instance's ENI, ``eni-0a...b2`` a standalone ENI); the test builds those resources in moto
and retargets the sample at them, then asserts on what AWS holds afterwards.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.corpus import envelope, retarget
from tests.integration import dsg_support
from tests.integration.dsg_support import (
    Account,
    ServiceOwned,
    build_vpc,
    default_sg_of,
    event,
    groups_of,
    install_client,
    modify_eni_event,
    rules_of,
)

account = dsg_support.account  # the fixture, under the name the tests take

EVENTS = Path(__file__).resolve().parents[2] / "events"
VPC, SUB, DSG, APP = (
    "vpc-0a1b2c3d4e5f60001",
    "subnet-0a1b2c3d4e5f60002",
    "sg-0def0000000000001",
    "sg-0a1b0000000000a01",
)
I1, E1, E2 = "i-0a0000000000000a1", "eni-0a0000000000000a1", "eni-0a0000000000000b2"

# sample -> expected status, and whether the ENIs end up off the default group
CASES = {
    "RunInstances--no-security-group": ("remediated", True),
    "RunInstances--network-interface-default-sg": ("remediated", True),
    "CreateNetworkInterface--user-default-sg": ("remediated", True),
    "CreateNetworkInterface--service-created-default-sg": ("reported", False),
    "ModifyNetworkInterfaceAttribute--attach-default-sg": ("remediated", True),
    "ModifyNetworkInterfaceAttribute--source-dest-check": ("no-op", False),
    "ModifyNetworkInterfaceAttribute--perimeter-own-role": ("ignored", False),
    "ModifyNetworkInterfaceAttribute--failed-call": ("ignored", False),
    "ModifyInstanceAttribute--groupset-default-sg": ("remediated", True),
    "AuthorizeSecurityGroupIngress--default-sg-world-ssh": ("remediated", True),
    "CreateModel--vpc-default-sg": ("reported", False),
    "CreateNotebookInstance--default-sg": ("reported", False),
    "CreateMarketplaceModelEndpoint--deepseek-default-sg": ("reported", False),
    # issue 9 A: a default group reached another way
    "ModifySecurityGroupRules--default-sg-widen": ("remediated", True),
    "CreateVpcEndpoint--interface-default-sg": ("reported", False),
}


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_sample_event(account: Account, name: str) -> None:
    ec2 = account.ec2
    vpc = build_vpc(ec2, instances=1, enis=0)
    description = {
        "service-created": "SageMaker notebook deepseek-eval",
        "CreateVpcEndpoint": "VPC Endpoint Interface vpce-0a1b2c3d4e5f60003",
    }.get(next((k for k in ("service-created", "CreateVpcEndpoint") if k in name), ""), "standalone")
    e2 = ec2.create_network_interface(SubnetId=vpc.subnet_id, Description=description)["NetworkInterface"][
        "NetworkInterfaceId"
    ]
    app = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc.vpc_id)["GroupId"]
    if "attach-default-sg" in name:
        ec2.modify_network_interface_attribute(NetworkInterfaceId=e2, Groups=[app, vpc.default_sg])
    if "service-created" in name or name.startswith("CreateVpcEndpoint"):
        # Stubbed part: moto cannot make an ENI requester-managed; reads report this one as such.
        install_client(ServiceOwned(account.session.client("ec2"), {e2}, "AROAEXAMPLESAGEMAKER"))
    enis = [vpc.enis[0], e2]
    before = groups_of(ec2, enis)
    mapping = {
        VPC: vpc.vpc_id,
        SUB: vpc.subnet_id,
        DSG: vpc.default_sg,
        APP: app,
        I1: vpc.instances[0],
        E1: vpc.enis[0],
        E2: e2,
        "sg-0d3fa017000000001": vpc.default_sg,
    }
    result = account.invoke(envelope(retarget(load(name), extra=mapping)))
    status, moved = CASES[name]
    assert result["status"] == status, result
    after = groups_of(ec2, enis)
    if moved:
        assert all(vpc.default_sg not in g and g for g in after.values()), after
        assert rules_of(ec2, vpc.default_sg) == []
        interim = result["vpcs"][0]["interim_group_id"]
        if "attach-default-sg" in name:
            assert after[e2] == [app, interim]
        assert not [
            r for r in rules_of(ec2, interim) if r.get("CidrIpv4") == "0.0.0.0/0" and not r["IsEgress"]
        ]
    else:
        assert after == before
        assert len(rules_of(ec2, vpc.default_sg)) == 3
        assert account.audit_records() == []
    if status == "reported":
        failed = [
            f
            for f in account.findings()
            if f["GeneratorId"] == "PER-DSG-2" and f["Compliance"]["Status"] == "FAILED"
        ]
        # A model's finding names the model; an ENI's names the ENI (the blocked one carries the fix).
        [f] = [f for f in failed if not f["Resources"][0]["Id"].endswith(vpc.enis[0])]
        expect = {
            "CreateModel--vpc-default-sg": "aws sagemaker create-model --model-name llama-3-8b-default-sg-v2",
            "CreateNotebookInstance--default-sg": "Stop eval-notebook",
            "CreateMarketplaceModelEndpoint--deepseek-default-sg": "update-marketplace-model-endpoint",
            "CreateNetworkInterface--service-created-default-sg": "managed by AROAEXAMPLESAGEMAKER",
            "CreateVpcEndpoint--interface-default-sg": (
                "aws ec2 modify-vpc-endpoint --vpc-endpoint-id vpce-0a1b2c3d4e5f60003"
            ),
        }[name]
        assert expect in f["Description"], f["Description"]
    if status in ("ignored", "no-op"):
        assert account.findings() == []


def test_tier_1_model_sg_on_a_database_eni(account: Account) -> None:
    ec2 = account.ec2
    vpc = build_vpc(ec2, instances=0, enis=0, world_port=None)

    def tiered(name: str, tier: str) -> str:
        return ec2.create_security_group(
            GroupName=name,
            Description=name,
            VpcId=vpc.vpc_id,
            TagSpecifications=[
                {"ResourceType": "security-group", "Tags": [{"Key": "perimeter:tier", "Value": tier}]}
            ],
        )["GroupId"]

    model, db = tiered("model", "model"), tiered("db", "database")
    eni = ec2.create_network_interface(SubnetId=vpc.subnet_id, Groups=[db, model])["NetworkInterface"][
        "NetworkInterfaceId"
    ]
    result = account.invoke(modify_eni_event(eni, [db, model]))
    assert result["status"] == "reported"
    assert groups_of(ec2, [eni]) == {eni: [db, model]}, "PER-TIER-1 only detects"
    [f] = account.findings()
    assert f["GeneratorId"] == "PER-TIER-1" and f["Compliance"]["Status"] == "FAILED"
    assert model in f["Description"] and db in f["Description"] and eni in f["Description"]


def test_sg_5_tier_reached_by_cidr(account: Account) -> None:
    ec2 = account.ec2
    vpc = build_vpc(ec2, instances=0, enis=0, world_port=None)
    ec2.create_route_table(VpcId=vpc.vpc_id)
    model = ec2.create_security_group(
        GroupName="model",
        Description="model",
        VpcId=vpc.vpc_id,
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": "perimeter:tier", "Value": "model"}]}
        ],
    )["GroupId"]
    perm = {"IpProtocol": "tcp", "FromPort": 8080, "ToPort": 8080, "IpRanges": [{"CidrIp": "10.0.1.0/24"}]}
    ec2.authorize_security_group_ingress(GroupId=model, IpPermissions=[perm])
    req = {
        "groupId": model,
        "ipPermissions": {
            "items": [
                {
                    "ipProtocol": "tcp",
                    "fromPort": 8080,
                    "toPort": 8080,
                    "ipRanges": {"items": [{"cidrIp": "10.0.1.0/24"}]},
                }
            ]
        },
    }
    result = account.invoke(event("AuthorizeSecurityGroupIngress", req, {"_return": True}))
    assert result["status"] == "reported"
    [f] = account.findings()
    assert f["GeneratorId"] == "PER-SG-5" and "tcp/8080 from 10.0.1.0/24" in f["Description"]
    assert len(rules_of(ec2, model)) == 2, "PER-SG-5 only detects"


def _cidr_request(group_id: str, port: int, cidr: str) -> tuple[dict[str, Any], dict[str, Any]]:
    perm = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": cidr}]}
    item = {"ipProtocol": "tcp", "fromPort": port, "toPort": port, "ipRanges": {"items": [{"cidrIp": cidr}]}}
    return perm, {"groupId": group_id, "ipPermissions": {"items": [item]}}


def test_default_sg_finding_resolves_when_a_person_empties_it(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    from perimeter.core import runtime

    monkeypatch.setenv("PERIMETER_DRY_RUN", "true")  # detect only: a person fixes it
    runtime.reset()
    ec2 = account.ec2
    vpc = build_vpc(ec2, instances=0, enis=0, world_port=None)
    dsg = default_sg_of(ec2, vpc.vpc_id)
    perm, req = _cidr_request(dsg, 22, "10.0.0.0/16")
    ec2.authorize_security_group_ingress(GroupId=dsg, IpPermissions=[perm])
    account.invoke(event("AuthorizeSecurityGroupIngress", req, {"_return": True}))
    dsg1 = {f["GeneratorId"]: f for f in account.findings()}["PER-DSG-1"]
    assert (dsg1["Compliance"]["Status"], dsg1["RecordState"]) == ("FAILED", "ACTIVE")
    # A revoke that leaves rules behind resolves nothing ...
    ec2.revoke_security_group_ingress(GroupId=dsg, IpPermissions=[perm])
    result = account.invoke(event("RevokeSecurityGroupIngress", req, {"_return": True}))
    assert result["status"] == "still-violating", result
    # ... emptying the group does, with no EC2 write of Perimeter's.
    for r in rules_of(ec2, dsg):
        revoke = ec2.revoke_security_group_egress if r["IsEgress"] else ec2.revoke_security_group_ingress
        revoke(GroupId=dsg, SecurityGroupRuleIds=[r["SecurityGroupRuleId"]])
    result = account.invoke(event("RevokeSecurityGroupEgress", {"groupId": dsg}, {"_return": True}))
    assert result["status"] == "resolved", result
    f = {f["GeneratorId"]: f for f in account.findings()}["PER-DSG-1"]
    assert (f["Compliance"]["Status"], f["RecordState"]) == ("PASSED", "ARCHIVED")
    assert rules_of(ec2, dsg) == []
