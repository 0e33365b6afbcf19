"""IamGuard (PER-IAM-1) under moto: invoke permissions on ``*`` or to anyone, admin on model
execution roles. Nothing is stubbed: moto implements every IAM read used. The corpus records
(AttachRolePolicy x2) run unchanged through the handler; their roles do not exist in moto, so
they are a clean no-op, and once the roles exist as SageMaker execution roles, findings.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from model_support import ACCOUNT, Acct, corpus, make_account, model_role, sample


@pytest.fixture
def acct(monkeypatch: pytest.MonkeyPatch) -> Iterator[Acct]:
    # AdministratorAccess must exist to be attached in moto (FACTS.md).
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    yield from make_account(monkeypatch)


IAM = "iam.amazonaws.com"
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def _role(acct: Acct, name: str, trust: dict[str, Any] = LAMBDA_TRUST) -> None:
    acct.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))


ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"


def _attach_admin(acct: Acct, role: str) -> None:
    # moto loads AWS managed policies only with MOTO_IAM_LOAD_MANAGED_POLICIES (FACTS.md); the
    # attachment needs the policy to exist, the handler does not read it (known by ARN).
    acct.client("iam").attach_role_policy(RoleName=role, PolicyArn=ADMIN)


def _apply(acct: Acct, event: dict[str, Any]) -> dict[str, Any]:
    """Make in moto the call the record describes (the handler reads IAM's state, not the record)."""
    req = event["detail"]["requestParameters"]
    iam = acct.client("iam")
    name = event["detail"]["eventName"]
    if name == "PutRolePolicy":
        iam.put_role_policy(
            RoleName=req["roleName"], PolicyName=req["policyName"], PolicyDocument=req["policyDocument"]
        )
    elif name == "PutUserPolicy":
        iam.put_user_policy(
            UserName=req["userName"], PolicyName=req["policyName"], PolicyDocument=req["policyDocument"]
        )
    elif name == "CreatePolicyVersion":
        iam.create_policy_version(
            PolicyArn=req["policyArn"], PolicyDocument=req["policyDocument"], SetAsDefault=req["setAsDefault"]
        )
    return event


def test_put_role_policy_invoke_on_star_quotes_the_statement(acct: Acct) -> None:
    _role(acct, "app-backend")
    out = acct.iam(_apply(acct, sample("PutRolePolicy--invoke-on-star.json")))
    [issue] = out["issues"]
    assert issue["control"] == "PER-IAM-1" and issue["resource"] == "role/app-backend"
    assert '"Sid":"InvokeAnything"' in issue["summary"] and "on *" in issue["summary"]
    assert "bedrock:converse" in issue["summary"] and "sagemaker:invokeendpoint" in issue["summary"]
    assert "No bedrock:GuardrailIdentifier condition" in issue["summary"]
    assert (
        issue["chain"]
        == "inline policy invoke-models on role app-backend -> role app-backend -> statement InvokeAnything"
    )
    [finding] = acct.findings()
    assert json.loads(finding["ProductFields"]["perimeter/statement"])["Resource"] == "*"
    assert finding["Resources"][0]["Type"] == "AwsIamRole"
    assert acct.audit_records() == []  # detect only


def test_wildcard_trust_raises_the_score(acct: Acct) -> None:
    anyone = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }
    _role(acct, "open-role", anyone)
    doc = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sagemaker:InvokeEndpoint",
                "Resource": f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/deepseek-r1",
            }
        ],
    }
    event = acct.event(
        "PutRolePolicy", IAM, {"roleName": "open-role", "policyName": "p", "policyDocument": json.dumps(doc)}
    )
    [issue] = acct.iam(_apply(acct, event))["issues"]
    assert "to any principal" in issue["summary"] and issue["score"] == 60


def test_scoped_invoke_with_guardrail_condition_is_compliant(acct: Acct) -> None:
    _role(acct, "app-backend")
    doc = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["bedrock:InvokeModel", "bedrock:Converse"],
                "Resource": "arn:aws:bedrock:us-east-1::foundation-model/deepseek.r1-v1:0",
                "Condition": {
                    "StringEquals": {
                        "bedrock:GuardrailIdentifier": f"arn:aws:bedrock:us-east-1:{ACCOUNT}:guardrail/g:1"
                    }
                },
            }
        ],
    }
    event = acct.event(
        "PutRolePolicy",
        IAM,
        {"roleName": "app-backend", "policyName": "p", "policyDocument": json.dumps(doc)},
    )
    out = acct.iam(_apply(acct, event))
    assert out["status"] == "compliant" and acct.findings() == [] and acct.messages() == []


def test_put_user_policy_and_create_policy_version(acct: Acct) -> None:
    acct.client("iam").create_user(UserName="data-scientist")
    [user_issue] = acct.iam(_apply(acct, sample("PutUserPolicy--bedrock-invoke-star.json")))["issues"]
    assert user_issue["resource"] == "user/data-scientist"
    acct.client("iam").create_policy(
        PolicyName="model-invokers",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
            }
        ),
    )
    [policy_issue] = acct.iam(_apply(acct, sample("CreatePolicyVersion--invoke-on-star.json")))["issues"]
    assert policy_issue["resource"] == "policy/model-invokers"
    scoped = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
    not_default = acct.event(
        "CreatePolicyVersion",
        IAM,
        {
            "policyArn": f"arn:aws:iam::{ACCOUNT}:policy/model-invokers",
            "policyDocument": json.dumps(scoped),
            "setAsDefault": False,
        },
    )
    # A version that is not the default grants nothing: the invoke-on-* default stays reported.
    [still] = acct.iam(_apply(acct, not_default))["issues"]
    assert still["resource"] == "policy/model-invokers"


def test_admin_on_model_execution_role(acct: Acct) -> None:
    model_role(acct.client("iam"))
    _attach_admin(acct, "sagemaker-deepseek-execution")
    out = acct.iam(sample("AttachRolePolicy--admin-on-model-execution-role.json"))
    [issue] = out["issues"]
    assert issue["resource"] == "role/sagemaker-deepseek-execution" and issue["severity"] == "HIGH"
    assert "AdministratorAccess" in issue["summary"] and "Detach" in issue["fix"]


def test_admin_on_other_role_is_not_this_control(acct: Acct) -> None:
    _role(acct, "sagemaker-deepseek-execution")  # trusted by Lambda, not SageMaker
    _attach_admin(acct, "sagemaker-deepseek-execution")
    assert acct.iam(sample("AttachRolePolicy--admin-on-model-execution-role.json"))["status"] == "compliant"


def test_iam_event_judged_whatever_its_region(acct: Acct) -> None:
    """IAM is global: a record naming another region is still judged; findings land here."""
    _role(acct, "app-backend")
    event = _apply(acct, sample("PutRolePolicy--invoke-on-star.json"))
    event["detail"]["awsRegion"] = "eu-west-1"
    event["region"] = "eu-west-1"
    out = acct.iam(event)
    assert out["status"] == "reported"
    [finding] = acct.findings()
    assert finding["ProductArn"].startswith("arn:aws:securityhub:us-east-1:")


@pytest.mark.parametrize("name", ["AttachRolePolicy/panther-1.json", "AttachRolePolicy/stratus-1.json"])
def test_corpus_attach_role_policy(acct: Acct, name: str) -> None:
    rec = corpus(name)
    out = acct.iam(rec)
    role = rec["requestParameters"]["roleName"]
    assert out["status"] == "resource-gone" and out["gone"] == [f"role {role}"]
    model_role(acct.client("iam"), role)
    _attach_admin(acct, role)
    second = dict(rec, eventID=f"{rec.get('eventID')}-2")
    [issue] = acct.iam(second)["issues"]
    assert issue["control"] == "PER-IAM-1" and issue["resource"] == f"role/{role}"
