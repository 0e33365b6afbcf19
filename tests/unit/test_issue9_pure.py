"""Issue 9 B, the pure parts: SNS subjects, ASFF resource types, partitions, fix commands that
keep what they do not change."""

from __future__ import annotations

import ast
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import botocore.session
import pytest
from perimeter.core.report import SNS_SUBJECT_MAX, sns_subject
from perimeter.default_groups.plan import Eni, ManagedResource, fix_for_eni, fix_for_managed

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "perimeter" / "perimeter"


@pytest.mark.parametrize(
    "text",
    [
        "x" * 100,
        "[Perimeter] HIGH PER-DSG-2 detected on arn:aws:sagemaker:us-east-1:123456789012:model/" + "m" * 60,
        "line one\nline two\tand \u2026 non-ascii \u00e9",
        "short",
        "[Perimeter] RESOLVED PER-VPC-2: PER-VPC-2 Model without network isolation"
        " or without PrivateLink to the runtime APIs",
    ],
)
def test_sns_subject_is_what_publish_accepts(text: str) -> None:
    """SNS Publish: fewer than 100 characters, ASCII, no line breaks or control characters."""
    subject = sns_subject(text)
    assert 0 < len(subject) < 100 and len(subject) <= SNS_SUBJECT_MAX
    assert all(" " <= c <= "~" for c in subject), subject
    assert subject == text or len(text) > SNS_SUBJECT_MAX or not text.isascii() or "\n" in text
    if subject.endswith(" ...") and " " in subject[: -len(" ...")]:
        # cut at a word boundary (one token longer than a subject is the exception):
        # every word kept is a whole word of the original
        words = " ".join("".join(c if " " <= c <= "~" else " " for c in text).split()).split()
        kept = subject[: -len(" ...")].split()
        assert kept == words[: len(kept)], (kept, words)


def _asff_types() -> set[str]:
    """Security Hub's resource types: the members of ResourceDetails, plus ``Other``."""
    model = botocore.session.get_session().get_service_model("securityhub")
    return set(model.shape_for("ResourceDetails").members) | {"Other"}


@pytest.mark.parametrize(
    "kind", ["AwsSageMakerModel", "AwsSageMakerNotebookInstance", "AwsBedrockMarketplaceModelEndpoint"]
)
def test_managed_resources_report_an_asff_type(kind: str) -> None:
    res = ManagedResource(kind, "m", "arn:aws:sagemaker:us-east-1:1:model/m", ("sg-1",), ("subnet-1",))
    assert res.asff_type in _asff_types()


def test_every_resource_type_literal_in_the_layer_is_an_asff_type() -> None:
    """Resource types the code writes into findings by name (``FindingResource("Aws...")``,
    ``arn_resource("Aws...")``) exist in ASFF; our own resource kinds go through ``asff_type``."""
    allowed = _asff_types()
    bad = []
    for path in LAYER.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in (
                "FindingResource",
                "arn_resource",
            ):
                first = node.args[0] if node.args else None
                if isinstance(first, ast.Constant) and first.value not in allowed:
                    bad.append(f"{path.name}:{node.lineno} {first.value}")
    assert not bad, bad


def test_no_arn_in_the_layer_hard_codes_the_aws_partition() -> None:
    """ARNs the code builds take the partition from the region (perimeter.core.arns); a literal
    ``arn:aws:`` would be wrong in aws-cn and aws-us-gov. Human-readable examples with
    placeholders (``<region>``) are allowed; docstrings and comments are not code."""
    bad = []
    for path in LAYER.rglob("*.py"):
        tree = ast.parse(path.read_text())
        docstrings = {
            id(n.body[0].value)
            for n in ast.walk(tree)
            if isinstance(n, ast.Module | ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
            and n.body
            and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr) and node.values:
                head = node.values[0]
                if isinstance(head, ast.Constant) and str(head.value).startswith("arn:aws:"):
                    bad.append(f"{path.name}:{node.lineno}")
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and re.fullmatch(r"arn:aws:[a-z0-9-]+:[^<\s]*", node.value)
            ):
                bad.append(f"{path.name}:{node.lineno} {node.value}")
    assert not bad, bad


LAMBDA_ENI = Eni(
    "eni-9",
    "vpc-1",
    (("sg-0def", "default"), ("sg-app", "app")),
    requester_managed=True,
    interface_type="lambda",
    description="AWS Lambda VPC ENI-score-model-0a1b2c3d-1111-2222",
    subnet_id="subnet-a",
)


def _jq_stage(command: str) -> str:
    """The jq filter of a ``... | jq '<filter>' > file && ...`` command."""
    stage = command.split("|", 1)[1].split(">", 1)[0]
    words = shlex.split(stage)
    assert words[0] == "jq"
    return words[1]


def test_lambda_fix_keeps_every_subnet_of_the_function() -> None:
    """One ENI knows one subnet; --vpc-config replaces all of them. The fix must read the
    function's subnets, not name the ENI's."""
    fix = fix_for_eni(LAMBDA_ENI, "sg-0def", "perimeter-interim")
    assert "subnet-a" not in fix, fix
    assert "get-function-configuration --function-name score-model" in fix
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed: the filter cannot be run")
    current = {
        "SubnetIds": ["subnet-a", "subnet-b", "subnet-c"],
        "SecurityGroupIds": ["sg-0def", "sg-app"],
        "VpcId": "vpc-1",
        "Ipv6AllowedForDualStack": True,
    }
    out = subprocess.run(
        ["jq", _jq_stage(fix)], input=json.dumps(current), capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == {
        "SubnetIds": ["subnet-a", "subnet-b", "subnet-c"],
        "SecurityGroupIds": ["sg-app"],
        "Ipv6AllowedForDualStack": True,
    }


def test_marketplace_fix_keeps_the_rest_of_the_endpoint_config() -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/ep"
    res = ManagedResource("AwsBedrockMarketplaceModelEndpoint", "ep", arn, ("sg-0def", "sg-m"), ("subnet-1",))
    fix = fix_for_managed(res, ["sg-0def"])
    assert "get-marketplace-model-endpoint" in fix and "file://endpoint-config.json" in fix
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed: the filter cannot be run")
    current = {
        "sageMaker": {
            "initialInstanceCount": 2,
            "instanceType": "ml.g5.12xlarge",
            "executionRole": "arn:aws:iam::123456789012:role/r",
            "vpc": {"securityGroupIds": ["sg-0def", "sg-m"], "subnetIds": ["subnet-1", "subnet-2"]},
        }
    }
    out = subprocess.run(
        ["jq", _jq_stage(fix)], input=json.dumps(current), capture_output=True, text=True, check=True
    )
    expected = json.loads(json.dumps(current))
    expected["sageMaker"]["vpc"]["securityGroupIds"] = ["sg-m"]
    assert json.loads(out.stdout) == expected
