"""The sweep's listings follow every page, with botocore's Stubber.

moto ignores ``MaxResults`` on these calls, lacks DescribeStaleSecurityGroups (FACTS.md) and
answers a revoke without ``RevokedSecurityGroupRules``/``UnknownIpPermissions``,
so a moto test never sees a second page nor a stale peering: Stubber serves pages shaped and
validated by botocore's service model, and checks the exact requests made.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from perimeter.adapters.inventory import InventoryAdapter
from perimeter.adapters.securityhub import SecurityHubAdapter


@pytest.fixture
def ec2(monkeypatch: Any) -> Any:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return boto3.client("ec2", region_name="us-east-1")


def _group(gid: str) -> dict[str, Any]:
    return {"GroupId": gid, "GroupName": gid, "VpcId": "vpc-1", "OwnerId": "123456789012", "Description": "d"}


def test_security_groups_and_enis_follow_next_tokens(ec2: Any) -> None:
    with Stubber(ec2) as stub:
        stub.add_response(
            "describe_security_groups",
            {"SecurityGroups": [_group("sg-1")], "NextToken": "t1"},
            {"MaxResults": 1000},
        )
        stub.add_response(
            "describe_security_groups",
            {"SecurityGroups": [_group("sg-2")]},
            {"MaxResults": 1000, "NextToken": "t1"},
        )
        stub.add_response(
            "describe_network_interfaces",
            {
                "NetworkInterfaces": [{"NetworkInterfaceId": "eni-1", "VpcId": "vpc-1", "Groups": []}],
                "NextToken": "n",
            },
            {"MaxResults": 1000},
        )
        stub.add_response(
            "describe_network_interfaces",
            {
                "NetworkInterfaces": [
                    {"NetworkInterfaceId": "eni-2", "VpcId": "vpc-1", "Groups": [{"GroupId": "sg-2"}]}
                ]
            },
            {"MaxResults": 1000, "NextToken": "n"},
        )
        inv = InventoryAdapter(ec2)
        assert [g["GroupId"] for g in inv.security_groups()] == ["sg-1", "sg-2"]
        assert [e.eni_id for e in inv.network_interfaces()] == ["eni-1", "eni-2"]
        stub.assert_no_pending_responses()


def test_launch_template_groups_come_from_one_listing_of_latest_and_default(ec2: Any) -> None:
    with Stubber(ec2) as stub:
        stub.add_response(
            "describe_launch_template_versions",
            {
                "LaunchTemplateVersions": [
                    {"LaunchTemplateData": {"SecurityGroupIds": ["sg-a"]}},
                    {"LaunchTemplateData": {"NetworkInterfaces": [{"Groups": ["sg-b"]}]}},
                ],
                "NextToken": "p",
            },
            {"Versions": ["$Latest", "$Default"]},
        )
        stub.add_response(
            "describe_launch_template_versions",
            {"LaunchTemplateVersions": [{"LaunchTemplateData": {"SecurityGroupIds": ["sg-c"]}}]},
            {"Versions": ["$Latest", "$Default"], "NextToken": "p"},
        )
        assert InventoryAdapter(ec2).launch_template_groups() == {"sg-a", "sg-b", "sg-c"}
        stub.assert_no_pending_responses()


def test_stale_groups_are_asked_per_peered_vpc_and_paged(ec2: Any) -> None:
    """DescribeStaleSecurityGroups: moto does not implement it (NotImplementedError)."""
    stale = {
        "GroupId": "sg-db",
        "VpcId": "vpc-1",
        "StaleIpPermissions": [
            {
                "IpProtocol": "tcp",
                "FromPort": 5432,
                "ToPort": 5432,
                "UserIdGroupPairs": [
                    {"GroupId": "sg-peer", "PeeringStatus": "deleted", "VpcPeeringConnectionId": "pcx-1"}
                ],
            }
        ],
        "StaleIpPermissionsEgress": [],
    }
    with Stubber(ec2) as stub:
        stub.add_response(
            "describe_stale_security_groups",
            {"StaleSecurityGroupSet": [], "NextToken": "s"},
            {"VpcId": "vpc-1"},
        )
        stub.add_response(
            "describe_stale_security_groups",
            {"StaleSecurityGroupSet": [stale]},
            {"VpcId": "vpc-1", "NextToken": "s"},
        )
        stub.add_response("describe_stale_security_groups", {"StaleSecurityGroupSet": []}, {"VpcId": "vpc-2"})
        (found,) = InventoryAdapter(ec2).stale_groups(["vpc-2", "vpc-1"])
        stub.assert_no_pending_responses()
    assert found.group_id == "sg-db"
    (rule,) = found.rules
    assert (rule.referenced_group_id, rule.from_port, rule.egress) == ("sg-peer", 5432, False)


def test_a_revoke_is_one_call_per_group_by_content_and_unknown_rules_count_as_gone(ec2: Any) -> None:
    """AWS's current answer names what it removed (with ids) and what it did not find; moto
    answers neither, so the shape comes from botocore's model here."""
    from perimeter.core.rules import Rule

    ssh = Rule("sg-1", False, "tcp", 22, 22, cidr="0.0.0.0/0", description="temp")
    rdp = Rule("sg-1", False, "tcp", 3389, 3389, cidr="0.0.0.0/0")
    with Stubber(ec2) as stub:
        stub.add_response(
            "revoke_security_group_ingress",
            {
                "Return": True,
                "RevokedSecurityGroupRules": [
                    {
                        "SecurityGroupRuleId": "sgr-1",
                        "GroupId": "sg-1",
                        "IsEgress": False,
                        "IpProtocol": "tcp",
                        "FromPort": 22,
                        "ToPort": 22,
                        "CidrIpv4": "0.0.0.0/0",
                    }
                ],
                "UnknownIpPermissions": [
                    {
                        "IpProtocol": "tcp",
                        "FromPort": 3389,
                        "ToPort": 3389,
                        "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                    }
                ],
            },
            {
                "GroupId": "sg-1",
                "IpPermissions": [
                    {
                        "IpProtocol": "tcp",
                        "FromPort": 22,
                        "ToPort": 22,
                        "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                    },
                    {
                        "IpProtocol": "tcp",
                        "FromPort": 3389,
                        "ToPort": 3389,
                        "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                    },
                ],
            },
        )
        result = InventoryAdapter(ec2).revoke("sg-1", [ssh, rdp])
        stub.assert_no_pending_responses()
    assert [(r.from_port, r.rule_id) for r in result.revoked] == [(22, "sgr-1")]
    assert [r.from_port for r in result.already_gone] == [3389]


def test_an_older_not_found_answer_is_settled_rule_by_rule(ec2: Any) -> None:
    from perimeter.core.rules import Rule

    ssh = Rule("sg-1", False, "tcp", 22, 22, cidr="0.0.0.0/0")
    rdp = Rule("sg-1", False, "tcp", 3389, 3389, cidr="0.0.0.0/0")
    with Stubber(ec2) as stub:
        stub.add_client_error("revoke_security_group_ingress", "InvalidPermission.NotFound")
        stub.add_response(
            "revoke_security_group_ingress", {"Return": True}, {"GroupId": "sg-1", "IpPermissions": [ANY]}
        )
        stub.add_client_error("revoke_security_group_ingress", "InvalidPermission.NotFound")
        result = InventoryAdapter(ec2).revoke("sg-1", [ssh, rdp])
        stub.assert_no_pending_responses()
    assert [r.from_port for r in result.revoked] == [22]
    assert [r.from_port for r in result.already_gone] == [3389]


def test_active_findings_follow_pages_and_filter_what_security_hub_returned(monkeypatch: Any) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    hub = boto3.client("securityhub", region_name="us-east-1")
    product = "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default"

    def f(
        fid: str, generator: str = "PER-SG-1", state: str = "ACTIVE", prod: str = product
    ) -> dict[str, Any]:
        return {
            "SchemaVersion": "2018-10-08",
            "Id": fid,
            "ProductArn": prod,
            "GeneratorId": generator,
            "AwsAccountId": "123456789012",
            "CreatedAt": "2026-01-01T00:00:00Z",
            "UpdatedAt": "2026-01-01T00:00:00Z",
            "Title": "t",
            "Description": "d",
            "Resources": [{"Type": "Other", "Id": "x"}],
            "RecordState": state,
        }

    with Stubber(hub) as stub:
        stub.add_response(
            "get_findings",
            {"Findings": [f("a"), f("b", "aws-x")], "NextToken": "h"},
            {"Filters": ANY, "MaxResults": 100},
        )
        stub.add_response(
            "get_findings",
            {
                "Findings": [
                    f("c", state="ARCHIVED"),
                    f("d", prod="arn:aws:securityhub:us-east-1::product/aws/guardduty"),
                    f("e"),
                ]
            },
            {"Filters": ANY, "MaxResults": 100, "NextToken": "h"},
        )
        got = SecurityHubAdapter(hub).active_findings(product)
        stub.assert_no_pending_responses()
    assert [x["Id"] for x in got] == ["a", "e"]


def test_findings_are_imported_100_a_request(monkeypatch: Any) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    hub = boto3.client("securityhub", region_name="us-east-1")
    base = {
        "SchemaVersion": "2018-10-08",
        "ProductArn": "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default",
        "GeneratorId": "PER-SG-1",
        "AwsAccountId": "123456789012",
        "CreatedAt": "2026-01-01T00:00:00Z",
        "UpdatedAt": "2026-01-01T00:00:00Z",
        "Title": "t",
        "Description": "d",
        "Resources": [{"Type": "Other", "Id": "x"}],
    }
    findings = [{**base, "Id": str(i)} for i in range(250)]
    with Stubber(hub) as stub:
        for n in (100, 100, 50):
            stub.add_response(
                "batch_import_findings",
                {"FailedCount": 0, "SuccessCount": n, "FailedFindings": []},
                {"Findings": ANY},
            )
        assert SecurityHubAdapter(hub).import_findings(findings) == 250
        stub.assert_no_pending_responses()
