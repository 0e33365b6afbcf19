"""DefaultSgGuard calls only what ``permissions.FUNCTIONS`` declares, and every declared action
has a code path; the EC2 call count of an event stays what the service's docstring says."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from botocore.client import BaseClient
from perimeter.core import permissions

from tests.corpus import envelope, retarget
from tests.integration import dsg_support
from tests.integration.dsg_support import Account, build_vpc, install_client, modify_eni_event

account = dsg_support.account  # the fixture, under the name the tests take
EVENTS = Path(__file__).resolve().parents[2] / "events"


def _sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    seen: Counter[str] = Counter()
    original = BaseClient._make_api_call

    def spy(client: BaseClient, operation: str, params: Any) -> Any:
        model = client.meta.service_model
        seen.update(
            permissions.actions_of_call(model.signing_name or model.endpoint_prefix, operation, params)
        )
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", spy)
    return seen


def test_calls_stay_within_and_cover_the_declared_actions(
    account: Account, calls: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import perimeter.core.runtime as runtime
    from perimeter.policy import default_policy_text

    text = default_policy_text().replace("quarantine: {enabled: false", "quarantine: {enabled: true")
    account.session.client("ssm").put_parameter(Name="/perimeter/policy", Value=text, Type="String")
    monkeypatch.setenv("PERIMETER_POLICY_PARAMETER", "/perimeter/policy")
    # The undo's exemptions table, as the template gives the function (issue 11): Query.
    account.session.client("dynamodb").create_table(
        TableName="perimeter-exemptions",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    monkeypatch.setenv("PERIMETER_EXEMPTIONS_TABLE", "perimeter-exemptions")
    runtime.reset()
    ec2 = account.ec2
    vpc = build_vpc(ec2, instances=1, enis=1)
    # An egress rule the interim group does not get by default: AuthorizeSecurityGroupEgress.
    ec2.authorize_security_group_egress(
        GroupId=vpc.default_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}
        ],
    )
    ec2.create_tags(Resources=[vpc.enis[-1]], Tags=[{"Key": "perimeter:quarantine", "Value": "true"}])
    event = modify_eni_event(vpc.enis[-1], [vpc.default_sg])
    # A first attempt that fails after the idempotency claim: the claim is deleted (DeleteItem).
    install_client(
        dsg_support.FaultyEc2(account.session.client("ec2"), "modify_network_interface_attribute", 1)
    )
    calls.clear()
    with pytest.raises(Exception, match="injected"):
        account.invoke(event)
    runtime.reset()
    assert account.invoke(event)["status"] == "remediated"
    # Issue 9's doors: a launch template on the default group (its versions, its stored finding)
    # and a group added to a VPC endpoint (its ENIs read back). The test's own setup calls are
    # not the function's: the count is put back as it was after them.
    so_far = Counter(calls)
    lt = ec2.create_launch_template(
        LaunchTemplateName="t",
        LaunchTemplateData={"ImageId": "ami-12345678", "SecurityGroupIds": [vpc.default_sg]},
    )["LaunchTemplate"]["LaunchTemplateId"]
    lt_event = envelope(
        retarget(_sample("CreateLaunchTemplate--default-sg"), extra={"lt-0a1b2c3d4e5f60007": lt})
    )
    vpce = ec2.create_vpc_endpoint(
        VpcId=vpc.vpc_id,
        ServiceName="com.amazonaws.us-east-1.sagemaker.runtime",
        VpcEndpointType="Interface",
        SubnetIds=[vpc.subnet_id],
    )["VpcEndpoint"]["VpcEndpointId"]
    calls.clear()
    calls.update(so_far)
    vpce_event = envelope(
        retarget(
            _sample("ModifyVpcEndpoint--add-default-sg"),
            extra={"vpce-0a1b2c3d4e5f60003": vpce, "sg-0def0000000000001": vpc.default_sg},
        )
    )
    assert account.invoke(lt_event)["status"] == "reported"
    account.invoke(vpce_event)
    declared = set(permissions.FUNCTIONS["DefaultSgGuardFunction"])
    assert set(calls) <= declared, f"called but not declared: {set(calls) - declared}"
    # CreateTags is authorized by tag-on-create inside CreateSecurityGroup: never a call of its own.
    assert declared - {"ec2:CreateTags"} <= set(calls), f"declared, never called: {declared - set(calls)}"


def test_ec2_call_count_of_a_migration(account: Account, calls: Counter[str]) -> None:
    ec2 = account.ec2
    vpc = build_vpc(ec2, instances=2, enis=2)  # four dependants
    event = modify_eni_event(vpc.enis[0], [vpc.default_sg])
    calls.clear()
    assert account.invoke(event)["status"] == "remediated"
    used = {k.split(":", 1)[1]: v for k, v in calls.items() if k.startswith("ec2:")}
    assert used == {
        "DescribeNetworkInterfaces": 2,  # the event's ENI; the default group's dependants
        # the ENI's groups' tiers; the default group; other groups' rules naming it (ingress,
        # egress); the interim group by name
        "DescribeSecurityGroups": 5,
        "DescribeSecurityGroupRules": 2,  # the default group's rules; the new interim group's
        "DescribeRouteTables": 1,  # VPC CIDRs (cached per container)
        "CreateSecurityGroup": 1,
        "AuthorizeSecurityGroupIngress": 1,  # the self-reference (the allow-all egress came with the group)
        "ModifyNetworkInterfaceAttribute": 8,  # two per dependant
        "RevokeSecurityGroupIngress": 1,
        "RevokeSecurityGroupEgress": 1,
    }, used
    calls.clear()
    # The same event again (EventBridge delivers at least once): the ENI is off the default group.
    assert account.invoke(event)["status"] == "compliant"
    assert {k for k in calls if k.startswith("ec2:")} == {
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSecurityGroups",
    }
