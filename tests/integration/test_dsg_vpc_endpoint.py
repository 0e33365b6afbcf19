"""Issue 9 A: ModifyVpcEndpoint adding the VPC's default group to an interface endpoint, through
the real DefaultSgGuard handler on moto. The record names the endpoint only: its ENI is read
back (DescribeVpcEndpoints, which moto implements).

Two moto gaps, stubbed and said so: moto cannot make an ENI requester-managed (an endpoint's ENI
is the VPC endpoint service's), nor does it give it the description AWS writes ("VPC Endpoint
Interface vpce-..."); reads of that one ENI report both, as AWS would. moto also leaves the
endpoint's ENI on the default group whatever groups the endpoint names, which is what AWS shows
after the call (plus the app group, which the finding's fix keeps when it is there).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.corpus import envelope, retarget
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

SAMPLE = Path(__file__).resolve().parents[2] / "events" / "ModifyVpcEndpoint--add-default-sg.json"
VPCE, DSG = "vpce-0a1b2c3d4e5f60003", "sg-0def0000000000001"


class EndpointEni(ServiceOwned):
    def _mark(self, page: dict[str, Any]) -> dict[str, Any]:
        page = super()._mark(page)
        for eni in page.get("NetworkInterfaces", []):
            if eni["NetworkInterfaceId"] in self._ids:
                eni["Description"] = f"VPC Endpoint Interface {self.vpce}"
                eni["InterfaceType"] = "vpc_endpoint"
        return page


def _endpoint(account: Account) -> tuple[Any, str, str]:
    ec2 = account.ec2
    vpc = build_vpc(ec2, instances=1, enis=0)
    app = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc.vpc_id)["GroupId"]
    ep = ec2.create_vpc_endpoint(
        VpcId=vpc.vpc_id,
        ServiceName="com.amazonaws.us-east-1.sagemaker.runtime",
        VpcEndpointType="Interface",
        SubnetIds=[vpc.subnet_id],
        SecurityGroupIds=[app],
    )["VpcEndpoint"]
    [eni] = ep["NetworkInterfaceIds"]
    client = EndpointEni(account.session.client("ec2"), {eni}, "AROAEXAMPLEVPCENDPOINT")
    client.vpce = ep["VpcEndpointId"]
    install_client(client)
    return vpc, ep["VpcEndpointId"], eni


def _event(vpc: Any, vpce: str, **request: Any) -> dict[str, Any]:
    sample = json.loads(SAMPLE.read_text())
    if request:
        sample["detail"]["requestParameters"]["ModifyVpcEndpointRequest"] = request
    return envelope(retarget(sample, extra={VPCE: vpce, DSG: vpc.default_sg}))


def test_default_group_added_to_an_endpoint_is_reported_with_the_endpoints_fix(account: Account) -> None:
    vpc, vpce, eni = _endpoint(account)
    account.ec2.modify_vpc_endpoint(VpcEndpointId=vpce, AddSecurityGroupIds=[vpc.default_sg])
    before = groups_of(account.ec2, [eni])

    result = account.invoke(_event(vpc, vpce))

    # The ENI is the endpoint service's: never moved by Perimeter, the fix is the endpoint's.
    assert result["status"] == "reported", result
    assert groups_of(account.ec2, [eni]) == before and account.audit_records() == []
    assert len(rules_of(account.ec2, vpc.default_sg)) == 3
    [f] = [
        f
        for f in account.findings()
        if f["GeneratorId"] == "PER-DSG-2" and f["Resources"][0]["Id"].endswith(eni)
    ]
    assert f["Compliance"]["Status"] == "FAILED"
    assert f"aws ec2 modify-vpc-endpoint --vpc-endpoint-id {vpce}" in f["Description"]


def test_a_call_adding_no_group_is_a_no_op(account: Account) -> None:
    vpc, vpce, _ = _endpoint(account)
    result = account.invoke(_event(vpc, vpce, VpcEndpointId=vpce, PrivateDnsEnabled=True))
    assert result["status"] == "no-op" and account.findings() == []


def test_an_endpoint_deleted_since_is_resource_gone(account: Account) -> None:
    vpc, vpce, _ = _endpoint(account)
    account.ec2.delete_vpc_endpoints(VpcEndpointIds=[vpce])
    result = account.invoke(_event(vpc, vpce))
    assert result["status"] == "resource-gone" and account.findings() == []
