"""ModelPosture on Bedrock events: Marketplace endpoints, Custom Model Import, guardrails.

Stubbed in every test here: the Bedrock client (moto implements no guardrail, Marketplace or
model-import call, FACTS.md). Responses are shaped from the Bedrock API reference and botocore's
Stubber checks them against the service model. EC2 (VPCs, security groups, flow logs), Security
Hub, SNS and DynamoDB stay on moto, and their state is asserted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.stub import Stubber
from model_support import ACCOUNT, Acct, corpus, make_account, sample


@pytest.fixture
def acct(monkeypatch: pytest.MonkeyPatch) -> Iterator[Acct]:
    yield from make_account(monkeypatch)


NOW = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
REGION = "us-east-1"
MM_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:endpoint/deepseek-r1-marketplace"
HUB = f"arn:aws:sagemaker:{REGION}:aws:hub-content/SageMakerPublicHub/Model"
SOURCE = f"{HUB}/deepseek-llm-r1-distill-llama-8b/2.0.0"


def guardrail(
    gid: str, strength: str, version: str = "DRAFT", region: str = REGION, account: str = ACCOUNT
) -> dict[str, Any]:
    return {
        "name": f"guard-{gid}",
        "guardrailId": gid,
        "guardrailArn": f"arn:aws:bedrock:{region}:{account}:guardrail/{gid}",
        "version": version,
        "status": "READY",
        "contentPolicy": {
            "filters": [
                {"type": "PROMPT_ATTACK", "inputStrength": strength, "outputStrength": "NONE"},
                {"type": "VIOLENCE", "inputStrength": "HIGH", "outputStrength": "HIGH"},
            ]
        },
        "createdAt": NOW,
        "updatedAt": NOW,
        "blockedInputMessaging": "Blocked.",
        "blockedOutputsMessaging": "Blocked.",
    }


def summary(gid: str, version: str = "DRAFT", region: str = REGION, account: str = ACCOUNT) -> dict[str, Any]:
    return {
        "id": gid,
        "arn": f"arn:aws:bedrock:{region}:{account}:guardrail/{gid}",
        "status": "READY",
        "name": f"guard-{gid}",
        "version": version,
        "createdAt": NOW,
        "updatedAt": NOW,
    }


def expect_guardrails(stub: Stubber, drafts: list[dict[str, Any]]) -> None:
    """ListGuardrails (DRAFT of every guardrail), then GetGuardrail for each."""
    stub.add_response("list_guardrails", {"guardrails": [summary(g["guardrailId"]) for g in drafts]}, {})
    for g in drafts:
        stub.add_response("get_guardrail", g, {"guardrailIdentifier": g["guardrailId"]})


def expect_enforced(stub: Stubber, configs: list[dict[str, Any]] | None = None) -> None:
    stub.add_response("list_enforced_guardrails_configuration", {"guardrailsConfig": configs or []}, {})


BEDROCK = f"arn:aws:bedrock:{REGION}:{ACCOUNT}"


def expect_served(stub: Stubber, imported: list[str], deployments: tuple[str, ...] = ()) -> None:
    stub.add_response(
        "list_marketplace_model_endpoints", {"marketplaceModelEndpoints": []}, {"maxResults": 10}
    )
    stub.add_response(
        "list_imported_models",
        {
            "modelSummaries": [
                {
                    "modelArn": f"arn:aws:bedrock:{REGION}:{ACCOUNT}:imported-model/{m}",
                    "modelName": m,
                    "creationTime": NOW,
                }
                for m in imported
            ]
        },
        {"maxResults": 10},
    )
    stub.add_response(
        "list_custom_model_deployments",
        {
            "modelDeploymentSummaries": [
                {
                    "customModelDeploymentArn": f"{BEDROCK}:custom-model-deployment/{d}",
                    "customModelDeploymentName": d,
                    "modelArn": f"{BEDROCK}:imported-model/{d}",
                    "createdAt": NOW,
                    "status": "Active",
                }
                for d in deployments
            ]
        },
        {"maxResults": 10},
    )


def marketplace(subnets: list[str], groups: list[str]) -> dict[str, Any]:
    sm: dict[str, Any] = {
        "initialInstanceCount": 1,
        "instanceType": "ml.g6.12xlarge",
        "executionRole": f"arn:aws:iam::{ACCOUNT}:role/sagemaker-deepseek-execution",
    }
    if subnets:
        sm["vpc"] = {"subnetIds": subnets, "securityGroupIds": groups}
    return {
        "marketplaceModelEndpoint": {
            "endpointArn": MM_ARN,
            "modelSourceIdentifier": SOURCE,
            "status": "ACTIVE",
            "createdAt": NOW,
            "updatedAt": NOW,
            "endpointConfig": {"sageMaker": sm},
            "endpointStatus": "InService",
        }
    }


def test_marketplace_endpoint_on_default_sg(acct: Acct) -> None:
    """The sample's endpoint, served from the VPC's default SG, in a VPC with no flow log, no
    bedrock-runtime endpoint, and no guardrail in the account."""
    dep = acct.deployment()
    stub = acct.stub("bedrock")
    stub.add_response(
        "get_marketplace_model_endpoint",
        marketplace([dep.private_subnet], [dep.default_sg]),
        {"endpointArn": MM_ARN},
    )
    expect_guardrails(stub, [])
    expect_enforced(stub)
    out = acct.model(sample("CreateMarketplaceModelEndpoint--deepseek-default-sg.json"))
    stub.assert_no_pending_responses()
    got = {(i["control"], i["resource"]) for i in out["issues"]}
    assert got == {
        ("PER-VPC-2", dep.vpc_id),  # no bedrock-runtime interface endpoint
        ("PER-FL-1", dep.vpc_id),
        ("PER-GR-1", f"bedrock-guardrails-{REGION}"),
        ("PER-SG-4", dep.default_sg),  # default SG's 0.0.0.0/0 egress, judged as the model tier
    }, out["issues"]
    gr = next(i for i in out["issues"] if i["control"] == "PER-GR-1")
    assert "Marketplace endpoint deepseek-r1-marketplace" in gr["summary"]
    assert "Not required: no account- or organization-level enforced guardrail" in gr["summary"]
    assert (
        gr["chain"]
        == "Marketplace endpoint deepseek-r1-marketplace -> model deepseek-llm-r1-distill-llama-8b/2.0.0"
    )
    assert len(acct.flow_logs(dep.vpc_id)) == 1
    assert "com.amazonaws.us-east-1.bedrock-runtime" in next(
        i["summary"] for i in out["issues"] if i["control"] == "PER-VPC-2"
    )


def test_marketplace_endpoint_without_vpc_with_strong_guardrail(acct: Acct) -> None:
    stub = acct.stub("bedrock")
    stub.add_response("get_marketplace_model_endpoint", marketplace([], []), {"endpointArn": MM_ARN})
    expect_guardrails(stub, [guardrail("gstrong", "HIGH")])
    expect_enforced(stub)
    out = acct.model(sample("UpdateMarketplaceModelEndpoint--no-vpc.json"))
    stub.assert_no_pending_responses()
    [issue] = out["issues"]
    assert (
        issue["control"] == "PER-VPC-1"
        and issue["resource"] == "marketplace-endpoint/deepseek-r1-marketplace"
    )
    assert out["guardrails"] == ["guard-gstrong (gstrong vDRAFT)"]
    assert out["guardrail_required"].startswith("Not required")


def test_model_import_without_guardrail(acct: Acct) -> None:
    stub = acct.stub("bedrock")
    expect_guardrails(stub, [guardrail("gweak", "LOW")])
    expect_enforced(stub)
    out = acct.model(sample("CreateModelImportJob--deepseek-r1-distill.json"))
    [issue] = out["issues"]
    assert issue["control"] == "PER-GR-1"
    assert "imported model deepseek-r1-distill-llama-8b" in issue["summary"]
    assert "PROMPT_ATTACK input LOW" in issue["summary"]
    [finding] = acct.findings()
    assert finding["Id"] == f"perimeter/PER-GR-1/{ACCOUNT}/{REGION}/bedrock-guardrails-{REGION}"


def test_model_import_with_enforced_guardrail_is_compliant(acct: Acct) -> None:
    stub = acct.stub("bedrock")
    expect_guardrails(stub, [guardrail("gstrong", "HIGH")])
    expect_enforced(
        stub,
        [
            {
                "configId": "cfg-1",
                "guardrailArn": f"arn:aws:bedrock:{REGION}:{ACCOUNT}:guardrail/gstrong",
                "guardrailId": "gstrong",
                "guardrailVersion": "2",
                "createdAt": NOW,
                "createdBy": "admin",
                "updatedAt": NOW,
                "updatedBy": "admin",
                "owner": "ACCOUNT",
            }
        ],
    )
    out = acct.model(sample("CreateModelImportJob--deepseek-r1-distill.json"))
    assert out["status"] == "compliant", out
    assert out["guardrail_required"] == "Required: account-level enforced guardrail gstrong v2."
    assert acct.findings() == [] and acct.messages() == []


def test_guardrail_weakened_names_what_changed(acct: Acct) -> None:
    gid = "gr4h1ghpr0mp"
    stub = acct.stub("bedrock")
    expect_served(stub, ["deepseek-r1-distill-llama-8b"])
    expect_enforced(stub)
    stub.add_response("get_guardrail", guardrail(gid, "LOW"), {"guardrailIdentifier": gid})
    stub.add_response(
        "list_guardrails",
        {"guardrails": [summary(gid), summary(gid, "1"), summary(gid, "2")]},
        {"guardrailIdentifier": gid},
    )
    stub.add_response(
        "get_guardrail", guardrail(gid, "HIGH", "2"), {"guardrailIdentifier": gid, "guardrailVersion": "2"}
    )
    expect_guardrails(stub, [guardrail(gid, "LOW")])
    out = acct.model(sample("UpdateGuardrail--prompt-attack-lowered.json"))
    stub.assert_no_pending_responses()
    by = {i["resource"]: i for i in out["issues"]}
    weakened = by[gid]
    assert "PROMPT_ATTACK input HIGH -> LOW" in weakened["summary"] and "version 2" in weakened["summary"]
    assert "imported model deepseek-r1-distill-llama-8b" in by[f"bedrock-guardrails-{REGION}"]["summary"]
    finding = next(f for f in acct.findings() if f["Resources"][0]["Id"].endswith(gid))
    assert finding["ProductFields"]["perimeter/changed"] == "PROMPT_ATTACK input HIGH -> LOW"


def test_guardrail_deleted_sample(acct: Acct) -> None:
    stub = acct.stub("bedrock")
    expect_served(stub, ["deepseek-r1-distill-llama-8b"])
    expect_enforced(stub)
    expect_guardrails(stub, [])
    out = acct.model(sample("DeleteGuardrail--deleted.json"))
    [issue] = out["issues"]
    assert issue["control"] == "PER-GR-1" and issue["severity"] == "HIGH"
    assert "guardrail gr4h1ghpr0mp (all versions) was deleted" in issue["summary"]
    assert "No guardrail with a HIGH prompt-attack filter remains" in issue["summary"]


# --- real CloudTrail records (us-west-2, account 123123123123) ------------------------------


@pytest.fixture
def west(monkeypatch: pytest.MonkeyPatch) -> Any:
    yield from make_account(monkeypatch, "us-west-2")


def test_corpus_delete_guardrail(west: Acct) -> None:
    stub = west.stub("bedrock")
    expect_served(stub, [])
    expect_enforced(stub)
    expect_guardrails(stub, [])
    out = west.model(corpus("DeleteGuardrail/panther-1.json"))
    [issue] = out["issues"]
    assert issue["resource"] == "cmy5azq5koeo" and "was deleted" in issue["summary"]
    assert out["actor"] == "arn:aws:sts::123123123123:assumed-role/DevAdmin/dr.evil"
    [finding] = west.findings()
    assert finding["AwsAccountId"] == "123123123123"


def test_corpus_update_guardrail_not_weakened(west: Acct) -> None:
    """The record hides the new settings (name HIDDEN_DUE_TO_SECURITY_REASONS): Perimeter reads
    the DRAFT and compares it with the latest version; here it kept its HIGH filter."""
    gid, acc, reg = "cmy5azq5koeo", "123123123123", "us-west-2"
    stub = west.stub("bedrock")
    expect_served(stub, [])
    expect_enforced(stub)
    stub.add_response(
        "get_guardrail", guardrail(gid, "HIGH", region=reg, account=acc), {"guardrailIdentifier": gid}
    )
    stub.add_response(
        "list_guardrails",
        {"guardrails": [summary(gid, region=reg, account=acc), summary(gid, "1", region=reg, account=acc)]},
        {"guardrailIdentifier": gid},
    )
    stub.add_response(
        "get_guardrail",
        guardrail(gid, "HIGH", "1", region=reg, account=acc),
        {"guardrailIdentifier": gid, "guardrailVersion": "1"},
    )
    stub.add_response("list_guardrails", {"guardrails": [summary(gid, region=reg, account=acc)]}, {})
    stub.add_response(
        "get_guardrail", guardrail(gid, "HIGH", region=reg, account=acc), {"guardrailIdentifier": gid}
    )
    out = west.model(corpus("UpdateGuardrail/panther-1.json"))
    stub.assert_no_pending_responses()
    assert out["status"] == "compliant", out
    assert west.findings() == []


def test_create_guardrail_sample(acct: Acct) -> None:
    """A HIGH prompt-attack guardrail created while an imported model is served: compliant,
    no write; the same event when only weak guardrails exist: the account-level finding."""
    gid = "gr4h1ghpr0mp"
    stub = acct.stub("bedrock")
    expect_served(stub, ["deepseek-r1-distill-llama-8b"])
    expect_enforced(stub)
    expect_guardrails(stub, [guardrail(gid, "HIGH")])
    assert acct.model(sample("CreateGuardrail--prompt-attack-high.json"))["status"] == "compliant"
    assert acct.findings() == []
    expect_served(stub, ["deepseek-r1-distill-llama-8b"])
    expect_enforced(stub)
    expect_guardrails(stub, [guardrail(gid, "MEDIUM")])
    event = sample("CreateGuardrail--prompt-attack-high.json")
    event["detail"]["eventID"] = "another-event"
    [issue] = acct.model(event)["issues"]
    stub.assert_no_pending_responses()
    assert issue["control"] == "PER-GR-1" and "PROMPT_ATTACK input MEDIUM" in issue["summary"]
