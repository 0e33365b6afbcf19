"""Issue 9 A, IAM doors: a group's policies reach every member user, and a model execution
role's trust policy can let anyone run as the model. Each test runs the real IamGuard handler on
the samples in ``events/`` against moto (which implements every IAM read used: GetGroup,
ListGroupsForUser, List/GetGroupPolicy, ListAttachedGroupPolicies) and reads the findings back
from Security Hub: a grant opens findings on the group and its members, the fixing call
(DetachGroupPolicy, DeleteGroupPolicy, RemoveUserFromGroup, UpdateAssumeRolePolicy back to a
service-only trust) resolves them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from model_support import ACCOUNT, Acct, make_account, model_role, sample

GROUP = "data-scientists"
GROUP_ID = f"perimeter/PER-IAM-1/{ACCOUNT}/us-east-1/group/{GROUP}"


def user_id(name: str) -> str:
    return f"perimeter/PER-IAM-1/{ACCOUNT}/us-east-1/user/{name}"


@pytest.fixture
def acct(monkeypatch: pytest.MonkeyPatch) -> Iterator[Acct]:
    yield from make_account(monkeypatch)


def _findings(acct: Acct) -> dict[str, dict[str, Any]]:
    return {f["Id"]: f for f in acct.findings()}


def _state(f: dict[str, Any]) -> tuple[str, str]:
    return f["Compliance"]["Status"], f["RecordState"]


def _request(name: str) -> dict[str, Any]:
    return dict(sample(name)["detail"]["requestParameters"])


def _group_with_members(acct: Acct, *members: str) -> Any:
    iam = acct.client("iam")
    iam.create_group(GroupName=GROUP)
    for user in members:
        iam.create_user(UserName=user)
        iam.add_user_to_group(GroupName=GROUP, UserName=user)
    return iam


def test_put_group_policy_is_a_finding_on_the_group_and_each_member(acct: Acct) -> None:
    iam = _group_with_members(acct, "analyst", "intern")
    iam.create_user(UserName="outsider")  # not a member: holds nothing
    req = _request("PutGroupPolicy--invoke-on-every-endpoint.json")
    iam.put_group_policy(GroupName=GROUP, PolicyName=req["policyName"], PolicyDocument=req["policyDocument"])

    out = acct.iam(sample("PutGroupPolicy--invoke-on-every-endpoint.json"))

    assert out["resources"] == [f"group {GROUP}", "user analyst", "user intern"]
    found = _findings(acct)
    assert set(found) == {GROUP_ID, user_id("analyst"), user_id("intern")}
    assert all(_state(f) == ("FAILED", "ACTIVE") for f in found.values())
    group = found[GROUP_ID]
    assert group["Resources"][0]["Type"] == "AwsIamGroup"
    # the wildcard ARNs that mean every endpoint / every Bedrock resource are named as such
    assert "arn:aws:sagemaker:*:*:endpoint/*" in group["Description"]
    assert "arn:aws:bedrock:*:*:*" in group["Description"]
    member = found[user_id("analyst")]
    assert f"inline policy invoke-models on group {GROUP}" in member["Description"]

    # the fixing call: the group's policy deleted resolves the group and every member
    iam.delete_group_policy(GroupName=GROUP, PolicyName=req["policyName"])
    out = acct.iam(sample("DeleteGroupPolicy--invoke-removed.json"))
    assert sorted(out["resolved"]) == sorted([GROUP_ID, user_id("analyst"), user_id("intern")])
    assert all(_state(f) == ("PASSED", "ARCHIVED") for f in _findings(acct).values())


def test_attach_group_policy_then_detach_resolves(acct: Acct) -> None:
    iam = _group_with_members(acct, "analyst")
    doc = _request("PutGroupPolicy--invoke-on-every-endpoint.json")["policyDocument"]
    arn = iam.create_policy(PolicyName="model-invokers", PolicyDocument=doc)["Policy"]["Arn"]
    assert arn == _request("AttachGroupPolicy--invoke-on-every-endpoint.json")["policyArn"]
    iam.attach_group_policy(GroupName=GROUP, PolicyArn=arn)

    acct.iam(sample("AttachGroupPolicy--invoke-on-every-endpoint.json"))
    found = _findings(acct)
    assert {GROUP_ID, user_id("analyst")} <= set(found)
    assert f"managed policy {arn} on group {GROUP}" in found[user_id("analyst")]["Description"]

    iam.detach_group_policy(GroupName=GROUP, PolicyArn=arn)
    out = acct.iam(sample("DetachGroupPolicy--invoke-removed.json"))
    assert sorted(out["resolved"]) == sorted([GROUP_ID, user_id("analyst")])


def test_a_managed_policy_change_reaches_the_groups_it_is_attached_to(acct: Acct) -> None:
    iam = _group_with_members(acct, "analyst")
    safe = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
        }
    )
    arn = iam.create_policy(PolicyName="model-invokers", PolicyDocument=safe)["Policy"]["Arn"]
    iam.attach_group_policy(GroupName=GROUP, PolicyArn=arn)
    doc = _request("PutGroupPolicy--invoke-on-every-endpoint.json")["policyDocument"]
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=doc, SetAsDefault=True)

    out = acct.iam(sample("CreatePolicyVersion--invoke-on-star.json"))

    assert f"group {GROUP}" in out["resources"] and "user analyst" in out["resources"]
    assert {GROUP_ID, user_id("analyst")} <= set(_findings(acct))


def test_add_user_to_group_is_a_finding_on_the_user_and_removal_resolves(acct: Acct) -> None:
    iam = _group_with_members(acct)
    req = _request("PutGroupPolicy--invoke-on-every-endpoint.json")
    iam.put_group_policy(GroupName=GROUP, PolicyName=req["policyName"], PolicyDocument=req["policyDocument"])
    iam.create_user(UserName="analyst")
    iam.add_user_to_group(GroupName=GROUP, UserName="analyst")

    out = acct.iam(sample("AddUserToGroup--group-invokes-every-endpoint.json"))

    assert out["resources"] == [f"group {GROUP}", "user analyst"]
    found = _findings(acct)
    assert _state(found[user_id("analyst")]) == ("FAILED", "ACTIVE")
    assert _state(found[GROUP_ID]) == ("FAILED", "ACTIVE")

    iam.remove_user_from_group(GroupName=GROUP, UserName="analyst")
    out = acct.iam(sample("RemoveUserFromGroup--analyst-leaves.json"))
    # the user holds nothing any more; the group still grants it (to no one, but it would to
    # the next member): its finding stays
    assert out["resolved"] == [user_id("analyst")]
    found = _findings(acct)
    assert _state(found[user_id("analyst")]) == ("PASSED", "ARCHIVED")
    assert _state(found[GROUP_ID]) == ("FAILED", "ACTIVE")


def test_a_harmless_group_is_compliant_and_writes_nothing(acct: Acct) -> None:
    iam = _group_with_members(acct, "analyst")
    safe = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "bedrock:InvokeModel",
                    "Resource": "arn:aws:bedrock:us-east-1::foundation-model/deepseek.r1-v1:0",
                }
            ],
        }
    )
    iam.put_group_policy(GroupName=GROUP, PolicyName="invoke-models", PolicyDocument=safe)
    out = acct.iam(sample("PutGroupPolicy--invoke-on-every-endpoint.json"))
    assert out["status"] == "compliant" and acct.findings() == [] and acct.messages() == []


def test_delete_group_resolves_the_group(acct: Acct) -> None:
    iam = _group_with_members(acct)
    req = _request("PutGroupPolicy--invoke-on-every-endpoint.json")
    iam.put_group_policy(GroupName=GROUP, PolicyName=req["policyName"], PolicyDocument=req["policyDocument"])
    acct.iam(sample("PutGroupPolicy--invoke-on-every-endpoint.json"))
    iam.delete_group_policy(GroupName=GROUP, PolicyName=req["policyName"])
    iam.delete_group(GroupName=GROUP)
    out = acct.iam(sample("DeleteGroup--data-scientists.json"))
    assert out["resolved"] == [GROUP_ID]
    assert "deleted" in _findings(acct)[GROUP_ID]["Description"]


ROLE = "sagemaker-deepseek-execution"
ROLE_ID = f"perimeter/PER-IAM-1/{ACCOUNT}/us-east-1/role/{ROLE}"


def test_wildcard_trust_on_a_model_execution_role_then_fixed(acct: Acct) -> None:
    iam = acct.client("iam")
    model_role(iam, ROLE)
    req = _request("UpdateAssumeRolePolicy--wildcard-trust.json")
    iam.update_assume_role_policy(RoleName=ROLE, PolicyDocument=req["policyDocument"])

    acct.iam(sample("UpdateAssumeRolePolicy--wildcard-trust.json"))
    f = _findings(acct)[ROLE_ID]
    assert _state(f) == ("FAILED", "ACTIVE")
    assert "trusts any principal" in f["Description"] and '"AWS": "*"' in f["Description"]

    # back to a service-only trust: the same call resolves it
    service_only = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "sagemaker.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )
    iam.update_assume_role_policy(RoleName=ROLE, PolicyDocument=service_only)
    fixed = sample("UpdateAssumeRolePolicy--wildcard-trust.json")
    fixed["detail"]["eventID"] = "0f1e2d3c-0000-4000-8000-00000000fix1"
    fixed["detail"]["requestParameters"]["policyDocument"] = service_only
    out = acct.iam(fixed)
    assert out["resolved"] == [ROLE_ID]
    assert _state(_findings(acct)[ROLE_ID]) == ("PASSED", "ARCHIVED")


def test_a_conditioned_wildcard_trust_is_not_a_finding(acct: Acct) -> None:
    iam = acct.client("iam")
    model_role(iam, ROLE)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
            },
            {
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-exampleorgid"}},
            },
        ],
    }
    iam.update_assume_role_policy(RoleName=ROLE, PolicyDocument=json.dumps(trust))
    out = acct.iam(sample("UpdateAssumeRolePolicy--wildcard-trust.json"))
    assert out["status"] == "compliant" and acct.findings() == []
