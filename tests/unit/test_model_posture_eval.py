"""The pure parts of issue 4: IAM statement tables, guardrail weakening, flow-log judgment,
model-chain issues, policy fields, registered controls. No AWS, no moto."""

from __future__ import annotations

import json

import perimeter.posture.controls  # noqa: F401  (registers the controls)
import pytest
from hypothesis import given
from hypothesis import strategies as st
from perimeter.core.controls import REGISTRY
from perimeter.flow_logs.evaluate import FLOW_LOG_FORMAT, FlowLog, FlowLogTarget, create_request, vpc_issue
from perimeter.iam.evaluate import (
    guardrail_condition,
    invoke_actions,
    is_admin,
    is_model_execution_role,
    parse_document,
    wide_resources,
    wildcard_principals,
)
from perimeter.model_posture.evaluate import (
    ModelFacts,
    NotebookFacts,
    SharedUse,
    model_outside_vpc,
    notebook_issues,
    shared_group,
)
from perimeter.model_posture.guardrails import (
    Enforcement,
    Guardrail,
    enforcement_text,
    guardrail_from_api,
    weakenings,
)
from perimeter.policy import FlowLogPolicy, PolicyError, load_default_policy, load_policy_text
from perimeter.posture.controls import judge


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        ("sagemaker:InvokeEndpoint", ["sagemaker:invokeendpoint"]),
        ("bedrock:Invoke*", ["bedrock:invokemodel", "bedrock:invokemodelwithresponsestream"]),
        (["bedrock:Converse*"], ["bedrock:converse", "bedrock:conversestream"]),
        (
            "sagemaker:*",
            [
                "sagemaker:invokeendpoint",
                "sagemaker:invokeendpointasync",
                "sagemaker:invokeendpointwithresponsestream",
            ],
        ),
        ("*", []),  # administrator access: judged by is_admin instead
        ("s3:GetObject", []),
        ("bedrock:ListFoundationModels", []),
    ],
)
def test_invoke_actions(actions: object, expected: list[str]) -> None:
    assert invoke_actions({"Effect": "Allow", "Action": actions, "Resource": "*"}) == expected


def test_deny_grants_nothing() -> None:
    assert invoke_actions({"Effect": "Deny", "Action": "sagemaker:*", "Resource": "*"}) == []


@pytest.mark.parametrize(
    ("resource", "wide"),
    [
        ("*", True),
        ("arn:aws:sagemaker:*:*:*", True),
        # issue 9 A: ARNs that mean every endpoint / every Bedrock resource
        ("arn:aws:sagemaker:*:*:endpoint/*", True),
        ("arn:aws:sagemaker:us-east-1:123456789012:endpoint/*", True),
        ("arn:aws:sagemaker:*:*:endpoint*", True),
        ("arn:aws:bedrock:*:*:*", True),
        ("arn:aws:bedrock:*", True),
        ("arn:aws:bedrock:us-east-1::foundation-model/*", True),
        ("arn:aws:sagemaker:*:*:endpoint/team-*", False),
        ("arn:aws:bedrock:us-east-1:123456789012:marketplace/model-endpoint/all-access/deepseek-*", False),
        ("arn:aws:sagemaker:us-east-1:123456789012:endpoint/deepseek-r1", False),
        ("arn:aws:bedrock:us-east-1::foundation-model/deepseek.r1-v1:0", False),
    ],
)
def test_wide_resources(resource: str, wide: bool) -> None:
    assert bool(wide_resources({"Resource": resource})) is wide


@given(st.from_regex(r"arn:aws:sagemaker:us-east-1:[0-9]{12}:endpoint/[a-z][a-z0-9-]{0,20}", fullmatch=True))
def test_named_endpoints_are_never_wide(arn: str) -> None:
    assert wide_resources({"Resource": [arn]}) == []


def test_admin_trust_and_conditions() -> None:
    assert is_admin({"Effect": "Allow", "Action": "*", "Resource": "*"})
    assert not is_admin({"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b"})
    trust = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": ["sagemaker.amazonaws.com"]},
                "Action": "sts:AssumeRole",
            }
        ]
    }
    assert is_model_execution_role(trust) and not wildcard_principals(trust)
    assert wildcard_principals(
        {"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"}]}
    )
    assert not wildcard_principals(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1"}},
                }
            ]
        }
    )
    cond = {"Condition": {"StringEquals": {"bedrock:GuardrailIdentifier": "arn:g"}}}
    assert guardrail_condition(cond) == 'StringEquals bedrock:GuardrailIdentifier "arn:g"'


def test_parse_document_url_encoded() -> None:
    doc = {"Version": "2012-10-17", "Statement": []}
    assert parse_document("%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D") == doc
    assert parse_document(json.dumps(doc)) == doc
    with pytest.raises(ValueError):
        parse_document("not json")


def _g(version: str, pa: str, **policies: object) -> Guardrail:
    api = {
        "guardrailId": "g",
        "guardrailArn": "arn:g",
        "name": "n",
        "version": version,
        "contentPolicy": {
            "filters": [{"type": "PROMPT_ATTACK", "inputStrength": pa, "outputStrength": "NONE"}]
        },
        **policies,
    }
    return guardrail_from_api(api)


def test_weakenings() -> None:
    before = _g("2", "HIGH", topicPolicy={"topics": [{"name": "t"}]})
    assert weakenings(before, _g("DRAFT", "LOW")) == [
        "PROMPT_ATTACK input HIGH -> LOW",
        "denied topics removed",
    ]
    assert weakenings(_g("1", "MEDIUM"), _g("DRAFT", "HIGH")) == []
    disabled = guardrail_from_api(
        {
            "guardrailId": "g",
            "contentPolicy": {
                "filters": [
                    {
                        "type": "PROMPT_ATTACK",
                        "inputStrength": "HIGH",
                        "outputStrength": "NONE",
                        "inputEnabled": False,
                    }
                ]
            },
        }
    )
    assert not disabled.blocks_prompt_attacks


def test_enforcement_text() -> None:
    strong = [_g("1", "HIGH")]
    assert enforcement_text([Enforcement("g", "1", "ORGANIZATION")], strong).startswith(
        "Required: organization-level enforced guardrail g v1"
    )
    assert enforcement_text([Enforcement("other", "1", "ACCOUNT")], strong).startswith(
        "Not required: the enforced"
    )
    assert enforcement_text([], strong).startswith("Not required: no account- or organization-level")


def _fl(traffic: str, status: str = "ACTIVE", deliver: str | None = "SUCCESS") -> FlowLog:
    return FlowLog("fl-1", "vpc-1", traffic, status, deliver, "cloud-watch-logs", "/g")


@pytest.mark.parametrize(
    ("logs", "issue"),
    [
        ([], True),
        ([_fl("ALL")], False),
        ([_fl("REJECT")], True),
        ([_fl("ALL", deliver="FAILED")], True),
        ([_fl("REJECT"), _fl("ALL")], False),
    ],
)
def test_vpc_issue(logs: list[FlowLog], issue: bool) -> None:
    assert (vpc_issue("vpc-1", logs, account="1", region="us-east-1") is not None) is issue


def test_create_request() -> None:
    req = create_request("vpc-1", FlowLogPolicy(), FlowLogTarget("/g", "arn:aws:iam::1:role/r"))
    assert req["TrafficType"] == "ALL" and req["LogFormat"] == FLOW_LOG_FORMAT
    assert req["DeliverLogsPermissionArn"] == "arn:aws:iam::1:role/r"
    s3 = create_request("vpc-1", FlowLogPolicy("s3", 365, "arn:aws:s3:::b"), FlowLogTarget(None, None))
    assert s3["LogDestination"] == "arn:aws:s3:::b" and "DeliverLogsPermissionArn" not in s3
    assert FlowLogTarget(None, None).missing(FlowLogPolicy()) is not None


def test_model_chain_issues() -> None:
    m = ModelFacts("m", "arn:m")
    issue = model_outside_vpc(m, ("endpoint e", "endpoint config c", "model m"))
    assert issue and issue.chain_text == "endpoint e -> endpoint config c -> model m"
    assert model_outside_vpc(ModelFacts("m", "arn:m", ("subnet-1",), ("sg-1",)), ()) is None
    nb = notebook_issues(NotebookFacts("n", "arn:n", "subnet-1", ("sg-1",), False), ())
    assert nb == []
    assert shared_group(SharedUse("sg-1", "model"), account="1", region="r", vpc_id=None, chain=()) is None
    shared = shared_group(
        SharedUse("sg-1", "model", (("eni-1", "sg-db", "database"),)),
        account="1",
        region="r",
        vpc_id="vpc-1",
        chain=("model m",),
    )
    assert shared and "ENI eni-1 also carries sg-db (database tier)" in shared.summary


def test_policy_fields_named_by_path() -> None:
    text = (load_default_policy().raw and None) or ""
    base = __import__("perimeter.policy", fromlist=["default_policy_text"]).default_policy_text()
    for old, new, path in [
        ("  retention_days: 365", "  retention_days: 42", "flow_logs.retention_days"),
        ("  destination: cloud-watch-logs", "  destination: s3", "flow_logs.s3_bucket_arn"),
        ("  required_for: [bedrock]", "  required_for: [openai]", "guardrails.required_for[0]"),
    ]:
        assert old in base
        with pytest.raises(PolicyError, match=path.replace("[", r"\[").replace("]", r"\]")):
            load_policy_text(base.replace(old, new))
    assert text == ""


def test_default_policy_modes_and_registry() -> None:
    policy = load_default_policy()
    assert policy.mode("PER-FL-1") == "enforce"
    for cid in ("PER-VPC-1", "PER-VPC-2", "PER-IAM-1", "PER-GR-1", "PER-TIER-1"):
        assert policy.mode(cid) in ("detect", "off") and cid in REGISTRY
    assert policy.with_dry_run(True).mode("PER-FL-1") == "detect"
    issue = vpc_issue("vpc-1", [], account="1", region="us-east-1")
    assert issue
    [j] = judge([issue], policy, principal_arn=None)
    assert (j.mode, j.severity) == ("enforce", "MEDIUM")
