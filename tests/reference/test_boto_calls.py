"""Every boto3 call in the perimeter package, held to botocore's service models.

The calls are read from the source (``boto_calls.find_calls``), so those no test runs and those
moto cannot serve (Bedrock) are checked too. The models are those of the botocore the layer
pins, which is also the one installed here (asserted below); the SAM build test repeats the
check against the botocore that ``sam build`` put into the layer.
"""

from __future__ import annotations

import re
from pathlib import Path

import botocore
import pytest
from botocore.loaders import create_loader

from tests.reference.boto_calls import Call, check, find_calls

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "perimeter" / "perimeter"
CALLS = find_calls(PACKAGE)


def layer_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "layers" / "perimeter" / "requirements.txt").read_text().splitlines():
        m = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)==([^\s#]+)\s*(#.*)?", line)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def test_the_layer_pins_boto3_and_botocore_and_the_tests_run_that_version() -> None:
    pins = layer_pins()
    assert "boto3" in pins and "botocore" in pins, "the layer must not rely on the runtime's boto3"
    assert botocore.__version__ == pins["botocore"], (
        f"tests run botocore {botocore.__version__}, the layer ships {pins['botocore']}: align them"
    )


def test_the_source_reader_finds_the_adapters_calls() -> None:
    found = {(c.service, c.method) for c in CALLS}
    # One per adapter, including what moto cannot serve: the reader must see through
    # constructor injection (Ec2Adapter(self.client("ec2"))) and lazily built clients.
    for expected in [
        ("ec2", "describe_security_groups"),
        ("ec2", "describe_flow_logs"),
        ("logs", "put_retention_policy"),
        ("bedrock", "list_enforced_guardrails_configuration"),
        ("bedrock", "get_marketplace_model_endpoint"),
        ("sagemaker", "describe_endpoint_config"),
        ("iam", "list_entities_for_policy"),
        ("securityhub", "batch_import_findings"),
        ("sns", "publish"),
        ("dynamodb", "put_item"),
        ("ssm", "get_parameter"),
    ]:
        assert expected in found, expected
    assert len(CALLS) >= 40


def test_every_call_matches_the_pinned_service_models() -> None:
    problems = check(CALLS, create_loader())
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (Call("x", "bedrock", "list_enforced_guardrail_configuration", False, (), (), False), "no operation"),
        (
            Call("x", "ec2", "describe_security_groups", False, ("GroupId",), (), False),
            "no parameter GroupId",
        ),
        (Call("x", "ec2", "describe_flow_logs", True, ("Filters",), (), False), None),
        (Call("x", "ec2", "describe_subnets", True, ("Bogus",), (), False), "no parameter Bogus"),
        (Call("x", "sns", "publish", False, ("Subject",), (("Subject", 5),), False), "invalid type"),
        (
            Call("x", "bedrock", "list_imported_models", False, ("maxResults",), (("maxResults", 0),), False),
            "invalid range",
        ),
        (Call("x", "sagemaker", "describe_model", True, (), (), False), "cannot be paginated"),
    ],
    ids=[
        "unknown-op",
        "unknown-param",
        "ec2-filter-alias",
        "unknown-paginate-param",
        "type",
        "range",
        "paginator",
    ],
)
def test_the_checker_catches_what_botocore_would_refuse(call: Call, expected: str | None) -> None:
    problems = check([call], create_loader())
    if expected is None:
        assert not problems
    else:
        assert any(expected in p for p in problems), problems


def test_the_claim_with_its_exemption_checks_matches_the_model() -> None:
    """The claim's TransactWriteItems is built at run time (the reader above sees its keywords
    only): the whole request, the write-ahead audit Put and the undo's ConditionChecks with it,
    goes through a client under botocore's Stubber, which validates it against the model."""
    import boto3
    from botocore.stub import Stubber
    from perimeter.adapters.exemptions import ExemptionStore
    from perimeter.core.once import Claim, OnceStore

    client = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    claim = Claim(OnceStore(client, "idempotency", "fn"), "fn#event", 60_000)
    keys = [
        ("sg-1", "PER-SG-1#sg-1|False|tcp|22|22|0.0.0.0/0"),
        ("sg-1", "PER-SG-1#*"),
        ("sg-1", "PER-SG-1#*"),
    ]
    claim.checks = tuple(ExemptionStore(client, "exemptions").absent(keys))
    assert len(claim.checks) == 2  # deduplicated: a transaction refuses two items with one key
    with Stubber(client) as stub:
        stub.add_response("transact_write_items", {})
        claim.take({"TableName": "audit", "Item": {"pk": {"S": "event#sg-1"}, "body": {"S": "{}"}}})
        stub.assert_no_pending_responses()
    assert claim.claimed
