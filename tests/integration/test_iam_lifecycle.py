"""PER-IAM-1 tells the principal's state (issue 8): one finding per (control, principal)
naming every problem, kept ACTIVE while any problem remains and resolved (PASSED/ARCHIVED)
by the call that removes the last one or deletes the principal; FirstObservedAt/CreatedAt
survive updates. Each test runs the real IamGuard handler on moto and reads the findings back
from Security Hub; nothing is stubbed (moto implements every IAM read used).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from model_support import ACCOUNT, Acct, make_account, model_role, sample

ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
ROLE = "sagemaker-deepseek-execution"
ROLE_ID = f"perimeter/PER-IAM-1/{ACCOUNT}/us-east-1/role/{ROLE}"


@pytest.fixture
def acct(monkeypatch: pytest.MonkeyPatch) -> Iterator[Acct]:
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")  # AdministratorAccess (FACTS.md)
    yield from make_account(monkeypatch)


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


INVOKE_STAR = {
    "Sid": "InvokeAnything",
    "Effect": "Allow",
    "Action": "sagemaker:InvokeEndpoint",
    "Resource": "*",
}
CONVERSE_STAR = {"Sid": "ConverseAnything", "Effect": "Allow", "Action": "bedrock:Converse", "Resource": "*"}


def _finding(acct: Acct, finding_id: str) -> dict[str, Any]:
    [f] = [f for f in acct.findings() if f["Id"] == finding_id]
    return f


def _state(f: dict[str, Any]) -> tuple[str, str, str]:
    return f["Compliance"]["Status"], f["Workflow"]["Status"], f["RecordState"]


def _event(acct: Acct, name: str, request: dict[str, Any]) -> dict[str, Any]:
    return acct.event(name, "iam.amazonaws.com", request)


def test_two_offending_statements_make_one_finding_naming_both(acct: Acct) -> None:
    """Before: one finding per statement, all with the role's Id: Security Hub kept one."""
    model_role(acct.client("iam"), ROLE)
    doc = _doc(INVOKE_STAR, CONVERSE_STAR)
    acct.client("iam").put_role_policy(RoleName=ROLE, PolicyName="invoke", PolicyDocument=doc)
    acct.iam(_event(acct, "PutRolePolicy", {"roleName": ROLE, "policyName": "invoke", "policyDocument": doc}))
    [finding] = acct.findings()
    assert finding["Id"] == ROLE_ID and _state(finding) == ("FAILED", "NEW", "ACTIVE")
    assert "InvokeAnything" in finding["Description"] and "ConverseAnything" in finding["Description"]


def test_a_batch_with_two_findings_of_one_id_fails_loudly(acct: Acct) -> None:
    from perimeter.adapters.securityhub import DuplicateFindingId, SecurityHubAdapter

    hub = SecurityHubAdapter(acct.client("securityhub"))
    twin = {"Id": "perimeter/PER-IAM-1/x", "Title": "t"}
    with pytest.raises(DuplicateFindingId, match="perimeter/PER-IAM-1/x"):
        hub.import_findings([twin, dict(twin, Title="u")])
    assert acct.findings() == []  # nothing sent


def test_detach_admin_resolves_and_keeps_first_seen(acct: Acct) -> None:
    iam = acct.client("iam")
    model_role(iam, ROLE)
    iam.attach_role_policy(RoleName=ROLE, PolicyArn=ADMIN)
    attach = sample("AttachRolePolicy--admin-on-model-execution-role.json")
    acct.iam(attach)
    first = _finding(acct, ROLE_ID)
    assert _state(first) == ("FAILED", "NEW", "ACTIVE")

    # The same problem seen again later: one finding, first-seen and creation times kept.
    again = _event(acct, "AttachRolePolicy", {"roleName": ROLE, "policyArn": ADMIN})
    acct.iam(again)
    second = _finding(acct, ROLE_ID)
    assert (second["FirstObservedAt"], second["CreatedAt"]) == (first["FirstObservedAt"], first["CreatedAt"])
    assert second["UpdatedAt"] >= first["UpdatedAt"] and second["LastObservedAt"] > first["LastObservedAt"]

    iam.detach_role_policy(RoleName=ROLE, PolicyArn=ADMIN)
    out = acct.iam(sample("DetachRolePolicy--admin-removed.json"))
    assert out["resolved"] == [ROLE_ID]
    done = _finding(acct, ROLE_ID)
    assert _state(done) == ("PASSED", "RESOLVED", "ARCHIVED")
    assert done["CreatedAt"] == first["CreatedAt"] and done["FirstObservedAt"] == first["FirstObservedAt"]
    assert "Resolved" in done["Description"] and "DetachRolePolicy" in done["Description"]
    assert any(m.get("event_name") == "DetachRolePolicy" for m in acct.messages())


def test_one_of_two_problems_removed_stays_active_naming_the_rest(acct: Acct) -> None:
    iam = acct.client("iam")
    model_role(iam, ROLE)
    iam.attach_role_policy(RoleName=ROLE, PolicyArn=ADMIN)
    iam.put_role_policy(RoleName=ROLE, PolicyName="invoke-models", PolicyDocument=_doc(INVOKE_STAR))
    acct.iam(_event(acct, "AttachRolePolicy", {"roleName": ROLE, "policyArn": ADMIN}))
    before = _finding(acct, ROLE_ID)
    assert "administrator access" in before["Description"] and "InvokeAnything" in before["Description"]

    iam.delete_role_policy(RoleName=ROLE, PolicyName="invoke-models")
    acct.iam(_event(acct, "DeleteRolePolicy", {"roleName": ROLE, "policyName": "invoke-models"}))
    after = _finding(acct, ROLE_ID)
    assert _state(after) == ("FAILED", "NEW", "ACTIVE")
    assert "administrator access" in after["Description"] and "InvokeAnything" not in after["Description"]

    # An unrelated, harmless event on the same role does not archive it either.
    iam.put_role_policy(
        RoleName=ROLE,
        PolicyName="logs",
        PolicyDocument=_doc({"Effect": "Allow", "Action": "logs:*", "Resource": "*"}),
    )
    acct.iam(_event(acct, "PutRolePolicy", {"roleName": ROLE, "policyName": "logs", "policyDocument": "{}"}))
    assert _state(_finding(acct, ROLE_ID)) == ("FAILED", "NEW", "ACTIVE")


def test_delete_role_resolves(acct: Acct) -> None:
    iam = acct.client("iam")
    model_role(iam, ROLE)
    iam.attach_role_policy(RoleName=ROLE, PolicyArn=ADMIN)
    acct.iam(_event(acct, "AttachRolePolicy", {"roleName": ROLE, "policyArn": ADMIN}))
    iam.detach_role_policy(RoleName=ROLE, PolicyArn=ADMIN)
    iam.delete_role(RoleName=ROLE)
    out = acct.iam(sample("DeleteRole--model-execution-role.json"))
    assert out["resolved"] == [ROLE_ID]
    assert _state(_finding(acct, ROLE_ID)) == ("PASSED", "RESOLVED", "ARCHIVED")


def test_user_policy_removed_resolves(acct: Acct) -> None:
    iam = acct.client("iam")
    iam.create_user(UserName="data-scientist")
    put = sample("PutUserPolicy--bedrock-invoke-star.json")
    req = put["detail"]["requestParameters"]
    iam.put_user_policy(
        UserName="data-scientist", PolicyName=req["policyName"], PolicyDocument=req["policyDocument"]
    )
    acct.iam(put)
    user_id = f"perimeter/PER-IAM-1/{ACCOUNT}/us-east-1/user/data-scientist"
    assert _state(_finding(acct, user_id)) == ("FAILED", "NEW", "ACTIVE")

    policy = iam.create_policy(PolicyName="model-invokers", PolicyDocument=_doc(INVOKE_STAR))["Policy"]["Arn"]
    iam.attach_user_policy(UserName="data-scientist", PolicyArn=policy)
    iam.delete_user_policy(UserName="data-scientist", PolicyName=req["policyName"])
    acct.iam(sample("DeleteUserPolicy--bedrock-invoke-removed.json"))
    left = _finding(acct, user_id)
    assert _state(left) == ("FAILED", "NEW", "ACTIVE") and "model-invokers" in left["Description"]

    iam.detach_user_policy(UserName="data-scientist", PolicyArn=policy)
    acct.iam(sample("DetachUserPolicy--invoke-on-star-removed.json"))
    assert _state(_finding(acct, user_id)) == ("PASSED", "RESOLVED", "ARCHIVED")


def test_delete_policy_version_resolves_the_policy_and_its_roles(acct: Acct) -> None:
    iam = acct.client("iam")
    model_role(iam, ROLE)
    safe = _doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    arn = iam.create_policy(PolicyName="model-invokers", PolicyDocument=safe)["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=ROLE, PolicyArn=arn)
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=_doc(INVOKE_STAR), SetAsDefault=True)
    acct.iam(
        _event(acct, "CreatePolicyVersion", {"policyArn": arn, "policyDocument": "{}", "setAsDefault": True})
    )
    policy_id = f"perimeter/PER-IAM-1/{ACCOUNT}/us-east-1/policy/model-invokers"
    assert _state(_finding(acct, policy_id)) == ("FAILED", "NEW", "ACTIVE")
    assert _state(_finding(acct, ROLE_ID)) == ("FAILED", "NEW", "ACTIVE")  # the role holds it too

    iam.set_default_policy_version(PolicyArn=arn, VersionId="v1")
    iam.delete_policy_version(PolicyArn=arn, VersionId="v2")
    out = acct.iam(sample("DeletePolicyVersion--invoke-on-star-version-removed.json"))
    assert sorted(out["resolved"]) == sorted([policy_id, ROLE_ID])
    assert _state(_finding(acct, policy_id)) == ("PASSED", "RESOLVED", "ARCHIVED")
    assert _state(_finding(acct, ROLE_ID)) == ("PASSED", "RESOLVED", "ARCHIVED")


def test_fix_events_write_nothing_to_iam_when_nothing_was_reported(acct: Acct) -> None:
    """No finding was ever active: the fixing call is a clean no-op (no import, no message)."""
    model_role(acct.client("iam"), ROLE)
    out = acct.iam(sample("DetachRolePolicy--admin-removed.json"))
    assert out["status"] == "compliant" and acct.findings() == [] and acct.messages() == []
