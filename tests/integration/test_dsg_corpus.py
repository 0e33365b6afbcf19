"""Every RunInstances / CreateNetworkInterface / ModifyInstanceAttribute record of the real
corpus through the real DefaultSgGuard handler under moto, outcome asserted on AWS state.

Each record is made true in moto first: its security groups (the VPC's default group where
the record says ``default``), its instances and ENIs are created, and the record is retargeted
at them (ids, account, region). Failed and DryRun calls, and ModifyInstanceAttribute records
that change something other than groupSet, must be no-ops.
"""

from __future__ import annotations

from typing import Any

import pytest
from perimeter.core.events import items

from tests.corpus import detail, envelope, records, retarget
from tests.integration import dsg_support
from tests.integration.dsg_support import (
    Account,
    ServiceOwned,
    build_vpc,
    groups_of,
    install_client,
    rules_of,
)

account = dsg_support.account  # the fixture, under the name the tests take

RUN = records("RunInstances")
ENI = records("CreateNetworkInterface")
MIA = records("ModifyInstanceAttribute")


def test_corpus_has_the_records_this_issue_covers() -> None:
    assert len(RUN) == 10 and len(ENI) == 1 and len(MIA) == 3


def _interim_groups(ec2: Any, vpc_id: str) -> list[str]:
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]
    return [g["GroupId"] for g in groups if g["GroupName"].startswith("perimeter-")]


def _replay_run_instances(ec2: Any, d: dict[str, Any], vpc: Any) -> tuple[dict[str, Any], list[str], bool]:
    """Create the record's groups and instances in moto; return the retargeted record, the moto
    ENI ids, and whether the record's instances landed on the default group."""
    mapping: dict[str, str] = {}
    on_default = False
    moto_enis: list[str] = []
    for inst in items((d.get("responseElements") or {}).get("instancesSet")):
        groups = items(inst.get("groupSet"))
        ids = []
        for g in groups:
            gid, name = g["groupId"], g.get("groupName", "")
            if gid not in mapping:
                if name == "default":
                    mapping[gid] = vpc.default_sg
                else:
                    mapping[gid] = ec2.create_security_group(
                        GroupName=f"{name}-{len(mapping)}", Description="corpus", VpcId=vpc.vpc_id
                    )["GroupId"]
            on_default = on_default or name == "default"
            ids.append(mapping[gid])
        if inst["instanceId"] in mapping:
            continue
        # moto gap: an instance launched with SecurityGroupIds keeps reporting those groups on
        # its ENI after they are changed (and the group-id filter misses it). Real AWS keeps the
        # groups on the ENI only, so launch bare and put the record's groups on the ENI.
        launched = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, SubnetId=vpc.subnet_id)[
            "Instances"
        ][0]
        mapping[inst["instanceId"]] = launched["InstanceId"]
        for rec_eni, moto_eni in zip(
            items(inst.get("networkInterfaceSet")), launched["NetworkInterfaces"], strict=False
        ):
            ec2.modify_network_interface_attribute(
                NetworkInterfaceId=moto_eni["NetworkInterfaceId"], Groups=ids
            )
            mapping[rec_eni["networkInterfaceId"]] = moto_eni["NetworkInterfaceId"]
            moto_enis.append(moto_eni["NetworkInterfaceId"])
        if inst.get("vpcId"):
            mapping[inst["vpcId"]] = vpc.vpc_id
    return retarget(d, extra=mapping), moto_enis, on_default


@pytest.mark.parametrize(("name", "record"), RUN, ids=[n for n, _ in RUN])
def test_run_instances_record(account: Account, name: str, record: dict[str, Any]) -> None:
    ec2 = account.ec2
    vpc = build_vpc(ec2, instances=0, enis=0, world_port=None)
    d = detail(record)
    default_rules = len(rules_of(ec2, vpc.default_sg))
    if d.get("errorCode"):
        result = account.invoke(envelope(retarget(d)))
        assert result["status"] == "ignored" and "failed" in result["reason"]
        assert _interim_groups(ec2, vpc.vpc_id) == []
        assert len(rules_of(ec2, vpc.default_sg)) == default_rules
        return
    replayed, enis, on_default = _replay_run_instances(ec2, d, vpc)
    result = account.invoke(envelope(replayed))
    after = groups_of(ec2, enis)
    if on_default:
        assert result["status"] == "remediated", result
        [interim] = _interim_groups(ec2, vpc.vpc_id)
        assert all(g == [interim] for g in after.values()), after
        assert rules_of(ec2, vpc.default_sg) == []
        # The default group's self-reference lives on as the interim group's own.
        assert any(r.get("ReferencedGroupInfo", {}).get("GroupId") == interim for r in rules_of(ec2, interim))
    else:
        assert result["status"] == "compliant", result
        assert all(vpc.default_sg not in g for g in after.values())
        assert _interim_groups(ec2, vpc.vpc_id) == []
        assert len(rules_of(ec2, vpc.default_sg)) == default_rules
        assert account.findings() == [] and account.audit_records() == []


@pytest.mark.parametrize(("name", "record"), ENI, ids=[n for n, _ in ENI])
def test_create_network_interface_record_service_owned(
    account: Account, name: str, record: dict[str, Any]
) -> None:
    """The EFS mount-target ENI the service created on the user's behalf (requester-managed,
    empty groupSet in the request, the default group in the response): Perimeter cannot move
    it, so nothing moves and the finding carries the EFS command."""
    ec2 = account.ec2
    vpc = build_vpc(ec2, instances=0, enis=0, world_port=None)
    d = detail(record)
    resp_eni = d["responseElements"]["networkInterface"]
    created = ec2.create_network_interface(SubnetId=vpc.subnet_id, Description=resp_eni["description"])
    eni_id = created["NetworkInterface"]["NetworkInterfaceId"]
    mapping = {
        resp_eni["networkInterfaceId"]: eni_id,
        resp_eni["vpcId"]: vpc.vpc_id,
        resp_eni["groupSet"]["items"][0]["groupId"]: vpc.default_sg,
    }
    # Stubbed part: moto cannot make an ENI requester-managed; reads report this one as such.
    install_client(ServiceOwned(account.session.client("ec2"), {eni_id}))
    rules_before = len(rules_of(ec2, vpc.default_sg))
    result = account.invoke(envelope(retarget(d, extra=mapping)))
    assert result["status"] == "reported", result
    assert groups_of(ec2, [eni_id]) == {eni_id: [vpc.default_sg]}
    assert len(rules_of(ec2, vpc.default_sg)) == rules_before
    fix = result["vpcs"][0]["fixes"][eni_id]
    assert fix.startswith("aws efs modify-mount-target-security-groups --mount-target-id fsmt-1234567")
    assert account.audit_records() == []


def test_create_network_interface_record_user_owned(account: Account) -> None:
    """The same record for an ENI this account owns: moved, and the default group emptied."""
    ec2 = account.ec2
    vpc = build_vpc(ec2, instances=0, enis=0)
    d = detail(ENI[0][1])
    resp_eni = d["responseElements"]["networkInterface"]
    eni_id = ec2.create_network_interface(SubnetId=vpc.subnet_id)["NetworkInterface"]["NetworkInterfaceId"]
    mapping = {
        resp_eni["networkInterfaceId"]: eni_id,
        resp_eni["groupSet"]["items"][0]["groupId"]: vpc.default_sg,
    }
    result = account.invoke(envelope(retarget(d, extra=mapping)))
    assert result["status"] == "remediated"
    [interim] = _interim_groups(ec2, vpc.vpc_id)
    assert groups_of(ec2, [eni_id]) == {eni_id: [interim]}
    assert rules_of(ec2, vpc.default_sg) == []


@pytest.mark.parametrize(("name", "record"), MIA, ids=[n for n, _ in MIA])
def test_modify_instance_attribute_records_are_no_ops(
    account: Account, name: str, record: dict[str, Any]
) -> None:
    ec2 = account.ec2
    vpc = build_vpc(ec2, instances=1, enis=0)
    d = detail(record)
    before = groups_of(ec2, vpc.enis)
    result = account.invoke(
        envelope(retarget(d, extra={d["requestParameters"]["instanceId"]: vpc.instances[0]}))
    )
    assert result["status"] == "no-op" and result["reason"] == "not a security-group change"
    assert groups_of(ec2, vpc.enis) == before == {vpc.enis[0]: [vpc.default_sg]}
    assert len(rules_of(ec2, vpc.default_sg)) == 3
    assert account.findings() == [] and account.audit_records() == []
