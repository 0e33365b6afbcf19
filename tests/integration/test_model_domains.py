"""Issue 9 A: SageMaker Studio domains through the real ModelPosture handler. A domain whose
apps reach the internet directly (AppNetworkAccessType PublicInternetOnly) is PER-VPC-1; the
fixing calls (UpdateDomain to VpcOnly, DeleteDomain) resolve it.

moto implements CreateDomain and DescribeDomain (used for CreateDomain), not UpdateDomain: the
update's state is served by botocore's Stubber (DescribeDomain as AWS answers after the update),
checked against the service model; Security Hub stays on moto and is read back.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from model_support import ACCOUNT, Acct, make_account, sample

REGION = "us-east-1"
SAMPLE_ID = "d-0a1b2c3d4e5f"


@pytest.fixture
def acct(monkeypatch: pytest.MonkeyPatch) -> Iterator[Acct]:
    yield from make_account(monkeypatch)


def _retarget(event: dict[str, Any], domain_id: str) -> dict[str, Any]:
    return json.loads(json.dumps(event).replace(SAMPLE_ID, domain_id))


def _domain(acct: Acct, access: str) -> str:
    arn = acct.client("sagemaker").create_domain(
        DomainName="ml-studio",
        AuthMode="IAM",
        DefaultUserSettings={"ExecutionRole": f"arn:aws:iam::{ACCOUNT}:role/sagemaker-deepseek-execution"},
        SubnetIds=["subnet-0a1b2c3d4e5f60001"],
        VpcId="vpc-0a1b2c3d4e5f60042",
        AppNetworkAccessType=access,
    )["DomainArn"]
    return str(arn).rsplit("/", 1)[-1]


def _state(f: dict[str, Any]) -> tuple[str, str]:
    return f["Compliance"]["Status"], f["RecordState"]


def test_public_internet_domain_then_vpc_only_resolves(acct: Acct) -> None:
    domain_id = _domain(acct, "PublicInternetOnly")
    out = acct.model(_retarget(sample("CreateDomain--public-internet-only.json"), domain_id))
    [issue] = out["issues"]
    assert (issue["control"], issue["resource"]) == ("PER-VPC-1", f"domain/{domain_id}")
    [finding] = acct.findings()
    assert _state(finding) == ("FAILED", "ACTIVE")
    assert "PublicInternetOnly" in finding["Description"]
    assert (
        f"update-domain --domain-id {domain_id} --app-network-access-type VpcOnly" in finding["Description"]
    )

    stub = acct.stub("sagemaker")
    stub.add_response(
        "describe_domain",
        {
            "DomainId": domain_id,
            "DomainArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:domain/{domain_id}",
            "DomainName": "ml-studio",
            "Status": "InService",
            "AppNetworkAccessType": "VpcOnly",
            "CreationTime": dt.datetime(2026, 11, 20, tzinfo=dt.UTC),
        },
        {"DomainId": domain_id},
    )
    out = acct.model(_retarget(sample("UpdateDomain--vpc-only.json"), domain_id))
    stub.assert_no_pending_responses()
    assert out["resolved"] == [finding["Id"]]
    assert _state(acct.findings()[0]) == ("PASSED", "ARCHIVED")


def test_vpc_only_domain_is_compliant(acct: Acct) -> None:
    domain_id = _domain(acct, "VpcOnly")
    out = acct.model(_retarget(sample("CreateDomain--public-internet-only.json"), domain_id))
    assert out["status"] == "compliant" and acct.findings() == []


def test_delete_domain_resolves(acct: Acct) -> None:
    domain_id = _domain(acct, "PublicInternetOnly")
    acct.model(_retarget(sample("CreateDomain--public-internet-only.json"), domain_id))
    acct.client("sagemaker").delete_domain(DomainId=domain_id)
    out = acct.model(_retarget(sample("DeleteDomain--ml-studio.json"), domain_id))
    [finding] = acct.findings()
    assert out["resolved"] == [finding["Id"]] and _state(finding) == ("PASSED", "ARCHIVED")
    assert "was deleted" in finding["Description"]
