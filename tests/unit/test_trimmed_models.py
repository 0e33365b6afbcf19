"""The layer's trimmed service models (``tools/trim_models.py``) are exactly what the tool makes
from the installed botocore and ``perimeter/core/permissions.py``: an operation added to a function
(and so to its declared permissions) without regenerating them fails here, not in Lambda."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("trim_models", ROOT / "tools" / "trim_models.py")
assert spec and spec.loader
trim = importlib.util.module_from_spec(spec)
spec.loader.exec_module(trim)


@pytest.mark.parametrize("service", trim.SERVICES)
def test_trimmed_model_is_current(service: str) -> None:
    version, expected = trim.trimmed(service)
    path = trim.OUT / service / version / "service-2.json"
    assert path.exists(), f"{path.relative_to(ROOT)} missing: run .venv/bin/python tools/trim_models.py"
    assert json.loads(path.read_text()) == expected, (
        f"{path.relative_to(ROOT)} is stale: run .venv/bin/python tools/trim_models.py"
    )


def test_runtime_clients_use_the_trimmed_models() -> None:
    from perimeter.core.runtime import Runtime, Settings

    rt = Runtime(Settings.from_env({"AWS_REGION": "us-east-1"}))
    ec2 = rt.client("ec2")
    assert hasattr(ec2, "describe_security_groups") and hasattr(ec2, "revoke_security_group_ingress")
    assert not hasattr(ec2, "run_instances")  # not called by any function: not in the model
    assert hasattr(rt.client("dynamodb"), "transact_write_items")
