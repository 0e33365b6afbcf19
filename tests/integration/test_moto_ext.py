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
