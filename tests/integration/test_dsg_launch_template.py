"""Issue 9 A: launch templates through the real DefaultSgGuard handler on moto (which implements
Create/ModifyLaunchTemplate, CreateLaunchTemplateVersion and DescribeLaunchTemplateVersions with
``$Default``/``$Latest``). A template cannot be revoked: a version that launches on the default
group (PER-DSG-2) or gives a model-tier instance a public IP (PER-VPC-1) is a finding on the
template, and the fixing calls (a clean version made the default, the template deleted) resolve
it. Nothing is ever written to EC2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.corpus import envelope, retarget
from tests.integration import dsg_support
from tests.integration.dsg_support import Account, build_vpc

account = dsg_support.account  # the fixture, under the name the tests take

EVENTS = Path(__file__).resolve().parents[2] / "events"
LT, DSG, MODEL_SG, SUB = (
    "lt-0a1b2c3d4e5f60007",
    "sg-0def0000000000001",
    "sg-0a1b2c3d4e5f60001",
    "subnet-0a1b2c3d4e5f60002",
)


def _event(name: str, mapping: dict[str, str], event_id: str | None = None) -> dict[str, Any]:
    record = json.loads((EVENTS / f"{name}.json").read_text())
    return envelope(retarget(record, extra=mapping, event_id=event_id))


def _state(account: Account) -> dict[tuple[str, str], tuple[str, str]]:
    return {
        (f["GeneratorId"], f["Resources"][0]["Type"]): (f["Compliance"]["Status"], f["RecordState"])
        for f in account.findings()
    }


def _world(account: Account) -> tuple[Any, str]:
    ec2 = account.ec2
    vpc = build_vpc(ec2, instances=0, enis=0)
    model = ec2.create_security_group(
        GroupName="model-tier",
        Description="model",
        VpcId=vpc.vpc_id,
        TagSpecifications=[
            {"ResourceType": "security-group", "Tags": [{"Key": "perimeter:tier", "Value": "model"}]}
        ],
    )["GroupId"]
    return vpc, model


def test_template_on_the_default_group_then_a_clean_default_version_resolves(account: Account) -> None:
    ec2 = account.ec2
    vpc, model = _world(account)
    lt = ec2.create_launch_template(
        LaunchTemplateName="inference-workers",
        LaunchTemplateData={"ImageId": "ami-12345678", "SecurityGroupIds": [vpc.default_sg]},
    )["LaunchTemplate"]["LaunchTemplateId"]
    mapping = {LT: lt, DSG: vpc.default_sg, MODEL_SG: model, SUB: vpc.subnet_id}
    rules_before = ec2.describe_security_group_rules()["SecurityGroupRules"]

    result = account.invoke(_event("CreateLaunchTemplate--default-sg", mapping))

    assert result["status"] == "reported", result
    assert _state(account) == {("PER-DSG-2", "AwsEc2LaunchTemplate"): ("FAILED", "ACTIVE")}
    [f] = account.findings()
    assert lt in f["Id"] and "default security group" in f["Description"]
    assert f"create-launch-template-version --launch-template-id {lt}" in f["Description"]
    # detect only: no rule revoked, nothing moved, nothing audited
    assert ec2.describe_security_group_rules()["SecurityGroupRules"] == rules_before
    assert account.audit_records() == []

    # the fix: a version on the model tier's group, made the default (and the latest)
    ec2.create_launch_template_version(
        LaunchTemplateId=lt, LaunchTemplateData={"ImageId": "ami-12345678", "SecurityGroupIds": [model]}
    )
    ec2.create_launch_template_version(
        LaunchTemplateId=lt, LaunchTemplateData={"ImageId": "ami-12345678", "SecurityGroupIds": [model]}
    )
    ec2.modify_launch_template(LaunchTemplateId=lt, DefaultVersion="3")
    result = account.invoke(_event("ModifyLaunchTemplate--clean-version-made-default", mapping))
    assert result["resolved"] == [f["Id"]], result
    assert _state(account) == {("PER-DSG-2", "AwsEc2LaunchTemplate"): ("PASSED", "ARCHIVED")}


def test_model_tier_version_with_a_public_ip_then_template_deleted(account: Account) -> None:
    ec2 = account.ec2
    vpc, model = _world(account)
    lt = ec2.create_launch_template(
        LaunchTemplateName="inference-workers",
        LaunchTemplateData={"ImageId": "ami-12345678", "SecurityGroupIds": [model]},
    )["LaunchTemplate"]["LaunchTemplateId"]
    ec2.create_launch_template_version(
        LaunchTemplateId=lt,
        SourceVersion="1",
        LaunchTemplateData={
            "NetworkInterfaces": [
                {
                    "DeviceIndex": 0,
                    "AssociatePublicIpAddress": True,
                    "SubnetId": vpc.subnet_id,
                    "Groups": [model],
                }
            ]
        },
    )
    mapping = {LT: lt, DSG: vpc.default_sg, MODEL_SG: model, SUB: vpc.subnet_id}

    result = account.invoke(_event("CreateLaunchTemplateVersion--model-tier-public-ip", mapping))

    # $Latest (version 2) is what `--launch-template Version=$Latest` launches
    assert result["status"] == "reported", result
    assert _state(account) == {("PER-VPC-1", "AwsEc2LaunchTemplate"): ("FAILED", "ACTIVE")}
    [f] = account.findings()
    assert "version 2" in f["Description"] and "AssociatePublicIpAddress" in f["Description"]

    ec2.delete_launch_template(LaunchTemplateId=lt)
    result = account.invoke(_event("DeleteLaunchTemplate--inference-workers", mapping))
    assert result["resolved"] == [f["Id"]], result
    assert "was deleted" in account.findings()[0]["Description"]


def test_a_public_ip_on_a_non_model_group_and_no_default_group_is_compliant(account: Account) -> None:
    ec2 = account.ec2
    vpc, model = _world(account)
    app = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc.vpc_id)["GroupId"]
    lt = ec2.create_launch_template(
        LaunchTemplateName="inference-workers",
        LaunchTemplateData={
            "NetworkInterfaces": [{"DeviceIndex": 0, "AssociatePublicIpAddress": True, "Groups": [app]}]
        },
    )["LaunchTemplate"]["LaunchTemplateId"]
    mapping = {LT: lt, DSG: vpc.default_sg, MODEL_SG: model, SUB: vpc.subnet_id}
    result = account.invoke(_event("CreateLaunchTemplate--default-sg", mapping))
    assert result["status"] == "compliant" and account.findings() == [] and account.messages() == []
