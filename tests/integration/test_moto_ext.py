"""The local runner's moto extensions (local/perimeter_local/moto_ext.py), under moto's mock_aws.

They exist only while entered (moto is left as it was, so no other test sees a stand-in), serve
what AWS would (the prefix-list filter's meaning; Bedrock calls shaped by botocore's model), and
refuse to answer in a shape botocore's Bedrock model does not allow.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.bedrock.responses import BedrockResponse
from moto.ec2.models.security_groups import SecurityGroup
from perimeter_local import moto_ext


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield


def _group_naming(ec2: Any, pl: str | None) -> str:
    gid = ec2.create_security_group(GroupName=f"g-{pl}", Description="x")["GroupId"]
    source = {"PrefixListIds": [{"PrefixListId": pl}]} if pl else {"IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
    ec2.authorize_security_group_ingress(
        GroupId=gid, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, **source}]
    )
    return str(gid)


def test_prefix_list_filter_has_aws_meaning_only_while_entered(aws: None) -> None:
    ec2 = boto3.client("ec2")
    pl = ec2.create_managed_prefix_list(
        PrefixListName="partners", MaxEntries=5, AddressFamily="IPv4", Entries=[{"Cidr": "198.51.100.0/24"}]
    )["PrefixList"]["PrefixListId"]
    naming, other = _group_naming(ec2, pl), _group_naming(ec2, None)
    query = {"Filters": [{"Name": "ip-permission.prefix-list-id", "Values": [pl]}]}
    with moto_ext.moto_extensions():
        moto_ext.forget_served()
        found = [g["GroupId"] for g in ec2.describe_security_groups(**query)["SecurityGroups"]]
        assert found == [naming] and other not in found
        assert moto_ext.describe(moto_ext.served()) == [
            f"ec2: embedded extension, moto lacks {moto_ext.PREFIX_LIST_FILTER}"
        ]
    # moto as it was: the filter is not implemented again
    with pytest.raises(NotImplementedError):
        ec2.describe_security_groups(**query)


def test_bedrock_stand_in_serves_then_leaves_moto_as_it_was(aws: None) -> None:
    def methods() -> set[str]:
        return {name for name in vars(BedrockResponse) if not name.startswith("__")}

    before = methods(), SecurityGroup.matches_filter
    br = boto3.client("bedrock")
    with moto_ext.moto_extensions(), moto_ext.moto_extensions():  # re-entrant
        moto_ext.forget_served()
        made = br.create_guardrail(
            name="g",
            blockedInputMessaging="Blocked.",
            blockedOutputsMessaging="Blocked.",
            contentPolicyConfig={
                "filtersConfig": [
                    {"type": "PROMPT_ATTACK", "inputStrength": "HIGH", "outputStrength": "NONE"}
                ]
            },
        )
        assert br.create_guardrail_version(guardrailIdentifier=made["guardrailId"])["version"] == "1"
        got = br.get_guardrail(guardrailIdentifier=made["guardrailArn"], guardrailVersion="1")
        assert got["contentPolicy"]["filters"] == [
            {"type": "PROMPT_ATTACK", "inputStrength": "HIGH", "outputStrength": "NONE"}
        ]
        assert [
            g["version"] for g in br.list_guardrails(guardrailIdentifier=made["guardrailId"])["guardrails"]
        ] == [
            "DRAFT",
            "1",
        ]
        br.delete_guardrail(guardrailIdentifier=made["guardrailId"])
        with pytest.raises(br.exceptions.ResourceNotFoundException):
            br.get_guardrail(guardrailIdentifier=made["guardrailId"])
        [line] = moto_ext.describe(moto_ext.served())
        assert line.startswith(
            "bedrock: embedded stand-in, moto lacks CreateGuardrail, CreateGuardrailVersion"
        )
    assert (methods(), SecurityGroup.matches_filter) == before
    with pytest.raises(NotImplementedError):
        br.list_guardrails()


def test_stand_in_refuses_an_answer_botocore_would_not_parse() -> None:
    with pytest.raises(AssertionError, match="GetGuardrail"):
        moto_ext._answer("GetGuardrail", {"name": 7, "guardrailId": "g"})


def _imported_model(br: Any) -> str:
    job = br.create_model_import_job(
        jobName="import-m",
        importedModelName="m",
        roleArn="arn:aws:iam::123456789012:role/import",
        modelDataSource={"s3DataSource": {"s3Uri": "s3://bucket/m/"}},
    )["jobArn"]
    return str(br.get_model_import_job(jobIdentifier=job)["importedModelArn"])


def test_stand_in_keeps_resource_policies_deployments_and_enforced_configurations(aws: None) -> None:
    br = boto3.client("bedrock")
    arn = "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.nova-micro-v1:0:128k/a1b2c3d4e5f6"
    with moto_ext.moto_extensions():
        # a resource policy: held as put, gone when deleted (Bedrock's ResourceNotFoundException)
        with pytest.raises(br.exceptions.ResourceNotFoundException):
            br.get_resource_policy(resourceArn=arn)
        br.put_resource_policy(resourceArn=arn, resourcePolicy='{"Version": "2012-10-17"}')
        assert br.get_resource_policy(resourceArn=arn)["resourcePolicy"] == '{"Version": "2012-10-17"}'
        br.delete_resource_policy(resourceArn=arn)
        with pytest.raises(br.exceptions.ResourceNotFoundException):
            br.get_resource_policy(resourceArn=arn)
        # a deployment of an imported model is listed; one of an unknown model is refused
        model = _imported_model(br)
        with pytest.raises(br.exceptions.ResourceNotFoundException):
            br.create_custom_model_deployment(modelDeploymentName="x", modelArn=f"{model}0")
        made = br.create_custom_model_deployment(modelDeploymentName="d", modelArn=model)
        [listed] = br.list_custom_model_deployments()["modelDeploymentSummaries"]
        assert (listed["customModelDeploymentArn"], listed["modelArn"], listed["status"]) == (
            made["customModelDeploymentArn"],
            model,
            "Active",
        )
        # an enforced configuration names a published version of an existing guardrail
        gid = br.create_guardrail(name="g", blockedInputMessaging="B.", blockedOutputsMessaging="B.")[
            "guardrailId"
        ]
        conf = {"guardrailIdentifier": gid, "guardrailVersion": "1"}
        with pytest.raises(br.exceptions.ResourceNotFoundException):
            br.put_enforced_guardrail_configuration(guardrailInferenceConfig=conf)
        br.create_guardrail_version(guardrailIdentifier=gid)
        config_id = br.put_enforced_guardrail_configuration(guardrailInferenceConfig=conf)["configId"]
        [held] = br.list_enforced_guardrails_configuration()["guardrailsConfig"]
        assert (held["configId"], held["guardrailId"], held["guardrailVersion"], held["owner"]) == (
            config_id,
            gid,
            "1",
            "ACCOUNT",
        )
        br.delete_enforced_guardrail_configuration(configId=config_id)
        assert br.list_enforced_guardrails_configuration()["guardrailsConfig"] == []
    with pytest.raises(NotImplementedError):
        br.get_resource_policy(resourceArn=arn)


def test_registered_endpoint_has_sagemakers_configuration(aws: None) -> None:
    br, sm, ec2 = boto3.client("bedrock"), boto3.client("sagemaker"), boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="tier", Description="x", VpcId=vpc)["GroupId"]
    role = "arn:aws:iam::123456789012:role/exec"
    for name, vpc_config in (("open", None), ("private", {"Subnets": [subnet], "SecurityGroupIds": [group]})):
        sm.create_model(
            ModelName=name,
            ExecutionRoleArn=role,
            PrimaryContainer={"Image": "img"},
            **({"VpcConfig": vpc_config} if vpc_config else {}),
        )
        sm.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[
                {
                    "VariantName": "v",
                    "ModelName": name,
                    "InitialInstanceCount": 2,
                    "InstanceType": "ml.g4dn.xlarge",
                }
            ],
        )
        sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    source = "arn:aws:sagemaker:us-east-1:aws:hub-content/SageMakerPublicHub/Model/m/1.0.0"
    with moto_ext.moto_extensions():
        configs = {}
        for name in ("open", "private"):
            arn = sm.describe_endpoint(EndpointName=name)["EndpointArn"]
            br.register_marketplace_model_endpoint(endpointIdentifier=arn, modelSourceIdentifier=source)
            got = br.get_marketplace_model_endpoint(endpointArn=arn)["marketplaceModelEndpoint"]
            configs[name] = got["endpointConfig"]["sageMaker"]
        missing = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/none"
        with pytest.raises(br.exceptions.ResourceNotFoundException):
            br.register_marketplace_model_endpoint(endpointIdentifier=missing, modelSourceIdentifier=source)
    assert configs["open"] == {
        "initialInstanceCount": 2,
        "instanceType": "ml.g4dn.xlarge",
        "executionRole": role,
    }
    assert configs["private"]["vpc"] == {"subnetIds": [subnet], "securityGroupIds": [group]}


def test_update_domain_changes_motos_domain_only_while_entered(aws: None) -> None:
    sm, ec2 = boto3.client("sagemaker"), boto3.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    domain = sm.create_domain(
        DomainName="studio",
        AuthMode="IAM",
        DefaultUserSettings={"ExecutionRole": "arn:aws:iam::123456789012:role/exec"},
        SubnetIds=[subnet],
        VpcId=vpc,
        AppNetworkAccessType="PublicInternetOnly",
    )["DomainArn"].rsplit("/", 1)[-1]
    with moto_ext.moto_extensions():
        moto_ext.forget_served()
        sm.update_domain(
            DomainId=domain, AppNetworkAccessType="VpcOnly", DefaultUserSettings={"SecurityGroups": ["sg-1"]}
        )
        with pytest.raises(sm.exceptions.ClientError, match="Could not find domain"):
            sm.update_domain(DomainId="d-none", AppNetworkAccessType="VpcOnly")
        assert moto_ext.describe(moto_ext.served()) == [
            "sagemaker: embedded extension, moto lacks UpdateDomain"
        ]
    got = sm.describe_domain(DomainId=domain)
    assert got["AppNetworkAccessType"] == "VpcOnly"
    assert got["DefaultUserSettings"] == {
        "ExecutionRole": "arn:aws:iam::123456789012:role/exec",
        "SecurityGroups": ["sg-1"],
    }
    with pytest.raises(NotImplementedError):
        sm.update_domain(DomainId=domain, AppNetworkAccessType="PublicInternetOnly")
