"""Issue 9 A, Bedrock doors through the real ModelPosture handler: a SageMaker endpoint
registered as a Marketplace endpoint, a guardrail version published, enforced guardrail
configurations put and deleted, a Custom Model Import deployment, a resource policy on a custom
model (and its removal, which resolves).

Stubbed: the Bedrock client (moto implements none of these Bedrock calls, FACTS.md); botocore's
Stubber checks every request and response against the pinned service model. Security Hub, SNS
and DynamoDB stay on moto, and the findings are read back from it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber
from model_support import ACCOUNT, Acct, make_account, sample
from test_model_bedrock import (
    MM_ARN,
    NOW,
    REGION,
    expect_enforced,
    expect_guardrails,
    expect_served,
    guardrail,
    marketplace,
)


@pytest.fixture
def acct(monkeypatch: pytest.MonkeyPatch) -> Iterator[Acct]:
    yield from make_account(monkeypatch)


GID = "gr4h1ghpr0mp"
ENFORCED_ID = f"perimeter/PER-GR-1/{ACCOUNT}/{REGION}/bedrock-enforced-guardrails-{REGION}"


def _state(acct: Acct, finding_id: str) -> tuple[str, str]:
    [f] = [f for f in acct.findings() if f["Id"] == finding_id]
    return f["Compliance"]["Status"], f["RecordState"]


def config(gid: str, version: str, config_id: str = "cfg-0a1b2c3d") -> dict[str, Any]:
    return {
        "configId": config_id,
        "guardrailArn": f"arn:aws:bedrock:{REGION}:{ACCOUNT}:guardrail/{gid}",
        "guardrailId": gid,
        "guardrailVersion": version,
        "createdAt": NOW,
        "createdBy": "admin",
        "updatedAt": NOW,
        "updatedBy": "admin",
        "owner": "ACCOUNT",
    }


def _again(event: dict[str, Any], suffix: str, **request: Any) -> dict[str, Any]:
    """The same call made again later (its own event id), with other parameters."""
    out = json.loads(json.dumps(event))
    out["detail"]["eventID"] = out["detail"]["eventID"][:-4] + suffix
    out["detail"]["requestParameters"].update(request)
    return out


def test_register_marketplace_endpoint_is_judged_like_create(acct: Acct) -> None:
    stub = acct.stub("bedrock")
    stub.add_response("get_marketplace_model_endpoint", marketplace([], []), {"endpointArn": MM_ARN})
    expect_guardrails(stub, [guardrail("gstrong", "HIGH")])
    expect_enforced(stub)
    out = acct.model(sample("RegisterMarketplaceModelEndpoint--existing-endpoint-no-vpc.json"))
    stub.assert_no_pending_responses()
    [issue] = out["issues"]
    assert (issue["control"], issue["resource"]) == (
        "PER-VPC-1",
        "marketplace-endpoint/deepseek-r1-marketplace",
    )
    [finding] = acct.findings()
    assert finding["Compliance"]["Status"] == "FAILED"


def test_published_version_weaker_than_the_last_one(acct: Acct) -> None:
    stub = acct.stub("bedrock")
    expect_served(stub, ["deepseek-r1-distill-llama-8b"])
    expect_enforced(stub)
    stub.add_response(
        "get_guardrail", guardrail(GID, "LOW", "3"), {"guardrailIdentifier": GID, "guardrailVersion": "3"}
    )
    stub.add_response(
        "get_guardrail", guardrail(GID, "HIGH", "2"), {"guardrailIdentifier": GID, "guardrailVersion": "2"}
    )
    expect_guardrails(stub, [guardrail(GID, "LOW")])
    out = acct.model(sample("CreateGuardrailVersion--prompt-attack-lowered.json"))
    stub.assert_no_pending_responses()
    by = {i["resource"]: i for i in out["issues"]}
    assert "PROMPT_ATTACK input HIGH -> LOW" in by[GID]["summary"] and "version 2" in by[GID]["summary"]
    assert f"bedrock-guardrails-{REGION}" in by  # no HIGH prompt-attack guardrail left at all


def test_published_version_as_strong_is_compliant(acct: Acct) -> None:
    stub = acct.stub("bedrock")
    expect_served(stub, ["deepseek-r1-distill-llama-8b"])
    expect_enforced(stub)
    stub.add_response(
        "get_guardrail", guardrail(GID, "HIGH", "3"), {"guardrailIdentifier": GID, "guardrailVersion": "3"}
    )
    stub.add_response(
        "get_guardrail", guardrail(GID, "HIGH", "2"), {"guardrailIdentifier": GID, "guardrailVersion": "2"}
    )
    expect_guardrails(stub, [guardrail(GID, "HIGH")])
    out = acct.model(sample("CreateGuardrailVersion--prompt-attack-lowered.json"))
    stub.assert_no_pending_responses()
    assert out["status"] == "compliant" and acct.findings() == []


def _expect_enforcement(stub: Stubber, configs: list[dict[str, Any]], strengths: dict[str, str]) -> None:
    expect_enforced(stub, configs)
    for c in configs:
        gid, version = c["guardrailId"], c["guardrailVersion"]
        stub.add_response(
            "get_guardrail",
            guardrail(gid, strengths[gid], version),
            {"guardrailIdentifier": gid, "guardrailVersion": version},
        )
    expect_served(stub, ["deepseek-r1-distill-llama-8b"])


def test_enforcing_a_weak_guardrail_then_a_strong_one_resolves(acct: Acct) -> None:
    stub = acct.stub("bedrock")
    _expect_enforcement(stub, [config(GID, "3")], {GID: "LOW"})
    put = sample("PutEnforcedGuardrailConfiguration--weak-guardrail.json")
    out = acct.model(put)
    stub.assert_no_pending_responses()
    [issue] = out["issues"]
    assert issue["resource"] == f"bedrock-enforced-guardrails-{REGION}"
    assert "PROMPT_ATTACK input LOW" in issue["summary"]
    assert _state(acct, ENFORCED_ID) == ("FAILED", "ACTIVE")

    # the configuration pointed at a guardrail version that blocks prompt attacks at HIGH
    _expect_enforcement(stub, [config("gstrong", "1")], {"gstrong": "HIGH"})
    fixed = _again(
        put, "fix1", guardrailInferenceConfig={"guardrailIdentifier": "gstrong", "guardrailVersion": "1"}
    )
    out = acct.model(fixed)
    stub.assert_no_pending_responses()
    assert out["resolved"] == [ENFORCED_ID]
    assert _state(acct, ENFORCED_ID) == ("PASSED", "ARCHIVED")


def test_deleting_the_strong_enforced_configuration_is_a_finding(acct: Acct) -> None:
    stub = acct.stub("bedrock")
    _expect_enforcement(stub, [], {})
    out = acct.model(sample("DeleteEnforcedGuardrailConfiguration--strong-guardrail-removed.json"))
    stub.assert_no_pending_responses()
    [issue] = out["issues"]
    assert "Enforced guardrail configuration cfg-0a1b2c3d was deleted" in issue["summary"]
    assert "imported model deepseek-r1-distill-llama-8b" in issue["summary"]


def test_a_custom_model_deployment_counts_as_served(acct: Acct) -> None:
    stub = acct.stub("bedrock")
    expect_enforced(stub, [])
    expect_served(stub, [], deployments=("deepseek-r1-distill-od",))
    out = acct.model(sample("DeleteEnforcedGuardrailConfiguration--strong-guardrail-removed.json"))
    stub.assert_no_pending_responses()
    [issue] = out["issues"]
    assert "custom model deployment deepseek-r1-distill-od" in issue["summary"]


def test_deleting_enforcement_while_nothing_is_served_is_compliant(acct: Acct) -> None:
    stub = acct.stub("bedrock")
    expect_enforced(stub, [])
    expect_served(stub, [])
    out = acct.model(sample("DeleteEnforcedGuardrailConfiguration--strong-guardrail-removed.json"))
    stub.assert_no_pending_responses()
    assert out["status"] == "compliant" and acct.findings() == []


def test_custom_model_deployment_needs_a_guardrail(acct: Acct) -> None:
    stub = acct.stub("bedrock")
    expect_guardrails(stub, [])
    expect_enforced(stub)
    out = acct.model(sample("CreateCustomModelDeployment--deepseek-r1-distill.json"))
    stub.assert_no_pending_responses()
    [issue] = out["issues"]
    assert issue["control"] == "PER-GR-1"
    assert "custom model deployment deepseek-r1-distill-od" in issue["summary"]


def test_resource_policy_to_anyone_then_deleted(acct: Acct) -> None:
    put = sample("PutResourcePolicy--custom-model-to-anyone.json")
    arn = put["detail"]["requestParameters"]["resourceArn"]
    stub = acct.stub("bedrock")
    stub.add_response(
        "get_resource_policy",
        {"resourcePolicy": put["detail"]["requestParameters"]["resourcePolicy"]},
        {"resourceArn": arn},
    )
    out = acct.model(put)
    stub.assert_no_pending_responses()
    [issue] = out["issues"]
    assert issue["control"] == "PER-IAM-1" and issue["severity"] in ("HIGH", "CRITICAL")
    assert '"AWS": "*"' in issue["summary"]
    [finding] = acct.findings()
    assert finding["Compliance"]["Status"] == "FAILED"

    # The policy removed: Bedrock answers GetResourcePolicy with ResourceNotFoundException.
    stub.add_client_error(
        "get_resource_policy", "ResourceNotFoundException", expected_params={"resourceArn": arn}
    )
    out = acct.model(sample("DeleteResourcePolicy--custom-model-unshared.json"))
    stub.assert_no_pending_responses()
    assert out["resolved"] == [finding["Id"]]
    [after] = acct.findings()
    assert (after["Compliance"]["Status"], after["RecordState"]) == ("PASSED", "ARCHIVED")


def test_resource_policy_with_a_condition_is_compliant(acct: Acct) -> None:
    put = sample("PutResourcePolicy--custom-model-to-anyone.json")
    arn = put["detail"]["requestParameters"]["resourceArn"]
    doc = json.loads(put["detail"]["requestParameters"]["resourcePolicy"])
    doc["Statement"][0]["Condition"] = {"StringEquals": {"aws:PrincipalOrgID": "o-exampleorgid"}}
    stub = acct.stub("bedrock")
    stub.add_response("get_resource_policy", {"resourcePolicy": json.dumps(doc)}, {"resourceArn": arn})
    out = acct.model(put)
    stub.assert_no_pending_responses()
    assert out["status"] == "compliant" and acct.findings() == []
