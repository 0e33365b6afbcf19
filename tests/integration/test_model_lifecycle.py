"""Model-posture findings tell the resource's state (issue 8): the calls that delete a model,
notebook or Marketplace endpoint, or add the missing guardrail, resolve the findings
(PASSED/ARCHIVED) and write nothing but Security Hub; a call that leaves a problem in place
keeps its finding ACTIVE. The real ModelPosture handler on moto, findings read back.

Stubbed where moto lacks the API (FACTS.md): the Bedrock client (no Marketplace endpoint or
guardrail calls in moto). moto also lacks ``update_notebook_instance``: the UpdateNotebookInstance
test sends the record of a change that network settings cannot be part of (AWS does not allow
changing DirectInternetAccess or SubnetId after creation) and reads the notebook back from moto.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
from model_support import ACCOUNT, Acct, make_account, model_role, sample
from test_model_bedrock import (
    MM_ARN,
    expect_enforced,
    expect_guardrails,
    expect_served,
    guardrail,
    marketplace,
)
from test_model_posture import _create_model

REGION = "us-east-1"


@pytest.fixture
def acct(monkeypatch: pytest.MonkeyPatch) -> Iterator[Acct]:
    yield from make_account(monkeypatch)


def _fid(control: str, resource: str) -> str:
    return f"perimeter/{control}/{ACCOUNT}/{REGION}/{resource}"


def _state(acct: Acct, finding_id: str) -> tuple[str, str, str]:
    [f] = [f for f in acct.findings() if f["Id"] == finding_id]
    return f["Compliance"]["Status"], f["Workflow"]["Status"], f["RecordState"]


ACTIVE = ("FAILED", "NEW", "ACTIVE")
RESOLVED = ("PASSED", "RESOLVED", "ARCHIVED")


def test_delete_model_resolves_both_findings(acct: Acct) -> None:
    acct.model(_create_model(acct, "deepseek-r1-distill-8b", None))
    ids = [_fid(c, "model/deepseek-r1-distill-8b") for c in ("PER-VPC-1", "PER-VPC-2")]
    assert [_state(acct, i) for i in ids] == [ACTIVE, ACTIVE]
    acct.client("sagemaker").delete_model(ModelName="deepseek-r1-distill-8b")
    out = acct.model(sample("DeleteModel--deepseek-r1-outside-vpc.json"))
    assert sorted(out["resolved"]) == sorted(ids)
    assert [_state(acct, i) for i in ids] == [RESOLVED, RESOLVED]
    assert acct.audit_records() == []  # reads and Security Hub only


def test_notebook_update_keeps_active_then_delete_resolves(acct: Acct) -> None:
    role = model_role(acct.client("iam"), "nb-role")
    sm = acct.client("sagemaker")
    sm.create_notebook_instance(
        NotebookInstanceName="deepseek-eval",
        InstanceType="ml.t3.medium",
        RoleArn=role,
        DirectInternetAccess="Enabled",
    )
    acct.model(sample("CreateNotebookInstance--direct-internet.json"))
    nb_id = _fid("PER-VPC-1", "notebook/deepseek-eval")
    assert _state(acct, nb_id) == ACTIVE

    out = acct.model(sample("UpdateNotebookInstance--new-instance-type.json"))
    assert _state(acct, nb_id) == ACTIVE and "DirectInternetAccess=Enabled" in out["issues"][0]["summary"]

    sm.stop_notebook_instance(NotebookInstanceName="deepseek-eval")
    sm.delete_notebook_instance(NotebookInstanceName="deepseek-eval")
    out = acct.model(sample("DeleteNotebookInstance--direct-internet.json"))
    assert out["resolved"] == [nb_id] and _state(acct, nb_id) == RESOLVED


def test_delete_marketplace_endpoint_resolves_endpoint_and_guardrail_need(acct: Acct) -> None:
    stub = acct.stub("bedrock")
    stub.add_response("get_marketplace_model_endpoint", marketplace([], []), {"endpointArn": MM_ARN})
    expect_guardrails(stub, [])
    expect_enforced(stub)
    acct.model(sample("UpdateMarketplaceModelEndpoint--no-vpc.json"))
    ep_id = _fid("PER-VPC-1", "marketplace-endpoint/deepseek-r1-marketplace")
    gr_id = _fid("PER-GR-1", f"bedrock-guardrails-{REGION}")
    assert _state(acct, ep_id) == ACTIVE and _state(acct, gr_id) == ACTIVE

    stub.add_client_error(
        "get_marketplace_model_endpoint",
        service_error_code="ResourceNotFoundException",
        expected_params={"endpointArn": MM_ARN},
    )
    expect_served(stub, [])  # nothing else served: no guardrail needed any more
    out = acct.model(sample("DeleteMarketplaceModelEndpoint--deepseek-default-sg.json"))
    stub.assert_no_pending_responses()
    assert sorted(out["resolved"]) == sorted([ep_id, gr_id])
    assert _state(acct, ep_id) == RESOLVED and _state(acct, gr_id) == RESOLVED


def test_create_guardrail_resolves_the_account_requirement(acct: Acct) -> None:
    stub = acct.stub("bedrock")
    expect_guardrails(stub, [guardrail("gweak", "LOW")])
    expect_enforced(stub)
    acct.model(sample("CreateModelImportJob--deepseek-r1-distill.json"))
    gr_id = _fid("PER-GR-1", f"bedrock-guardrails-{REGION}")
    assert _state(acct, gr_id) == ACTIVE
    first = next(f for f in acct.findings() if f["Id"] == gr_id)

    # A weak guardrail created: the requirement is still unmet, the finding stays ACTIVE.
    expect_served(stub, ["deepseek-r1-distill-llama-8b"])
    expect_enforced(stub)
    expect_guardrails(stub, [guardrail("gweak", "LOW"), guardrail("gmedium", "MEDIUM")])
    weak = copy.deepcopy(sample("CreateGuardrail--prompt-attack-high.json"))
    weak["detail"]["eventID"] = "weak-guardrail"
    acct.model(weak)
    assert _state(acct, gr_id) == ACTIVE

    expect_served(stub, ["deepseek-r1-distill-llama-8b"])
    expect_enforced(stub)
    expect_guardrails(stub, [guardrail("gweak", "LOW"), guardrail("gr4h1ghpr0mp", "HIGH")])
    out = acct.model(sample("CreateGuardrail--prompt-attack-high.json"))
    stub.assert_no_pending_responses()
    assert out["resolved"] == [gr_id] and _state(acct, gr_id) == RESOLVED
    last = next(f for f in acct.findings() if f["Id"] == gr_id)
    assert (last["CreatedAt"], last["FirstObservedAt"]) == (first["CreatedAt"], first["FirstObservedAt"])


def test_delete_endpoint_resolves_the_sagemaker_guardrail_need(
    acct: Acct, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Policy guardrails.required_for [bedrock, sagemaker]: a served endpoint without a guardrail
    is reported on the account; deleting the only endpoint resolves it."""
    from model_support import policy_with

    policy_with(
        monkeypatch, acct.session, "  required_for: [bedrock]\n", "  required_for: [bedrock, sagemaker]\n"
    )
    dep = acct.deployment(flow_log=True, runtime_endpoint=True)
    acct.model(_create_model(acct, "deepseek-r1", dep, isolation=True))
    sm = acct.client("sagemaker")
    sm.create_endpoint_config(
        EndpointConfigName="deepseek-r1-config",
        ProductionVariants=[
            {
                "VariantName": "all",
                "ModelName": "deepseek-r1",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.g4dn.xlarge",
            }
        ],
    )
    sm.create_endpoint(EndpointName="deepseek-r1", EndpointConfigName="deepseek-r1-config")
    stub = acct.stub("bedrock")
    expect_guardrails(stub, [])
    expect_enforced(stub)
    acct.model(
        acct.event(
            "CreateEndpoint",
            "sagemaker.amazonaws.com",
            {"endpointName": "deepseek-r1", "endpointConfigName": "deepseek-r1-config"},
        )
    )
    gr_id = _fid("PER-GR-1", f"bedrock-guardrails-{REGION}")
    assert _state(acct, gr_id) == ACTIVE

    sm.delete_endpoint(EndpointName="deepseek-r1")
    expect_served(stub, [])
    out = acct.model(sample("DeleteEndpoint--deepseek-r1.json"))
    stub.assert_no_pending_responses()
    assert out["resolved"] == [gr_id] and _state(acct, gr_id) == RESOLVED
    # The model keeps no finding of its own (it is in a VPC, isolated): nothing else changed.
    assert all(f["RecordState"] == "ARCHIVED" for f in acct.findings() if f["GeneratorId"] == "PER-GR-1")


def test_delete_events_without_a_finding_are_silent(acct: Acct) -> None:
    out = acct.model(sample("DeleteModel--deepseek-r1-outside-vpc.json"))
    assert out["status"] == "resource-gone" and acct.findings() == [] and acct.messages() == []
