#!/usr/bin/env python3
"""Write trimmed botocore service models for the services Perimeter's functions call.

Building a client loads its service's whole model: EC2's is ~5 MB of JSON and costs more than
``import boto3`` on a cold start. The functions call a handful of its operations, so the layer
ships, for the large models, a model holding only the operations that
``perimeter/core/permissions.py`` declares (the least-privilege contract, held to the code by
tests), with every shape they reach, copied unchanged from the installed botocore.
``perimeter.core.runtime`` points its botocore session at them (the ``data_path`` setting);
paginators, waiters and endpoint rules still come from botocore itself.
``tests/unit/test_trimmed_models.py`` fails when a model is stale; rerun this then:

    .venv/bin/python tools/trim_models.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "layers" / "perimeter" / "perimeter" / "models"
#: Services whose model is large enough to matter on a cold start (the others load in a few ms).
SERVICES = ("ec2", "securityhub", "dynamodb")


def declared_operations(service: str) -> set[str]:
    sys.path.insert(0, str(ROOT / "layers" / "perimeter"))
    from perimeter.core import permissions

    actions = {a for acts in permissions.FUNCTIONS.values() for a in acts}
    ops = {a.split(":", 1)[1] for a in actions if a.startswith(f"{service}:")}
    if service == "dynamodb":
        ops.add("TransactWriteItems")  # the claim + audit write; IAM authorizes it as PutItem
    return ops


def reachable(model: dict[str, Any], ops: set[str]) -> set[str]:
    shapes = model["shapes"]
    todo = [
        model["operations"][op][part]["shape"]
        for op in ops
        for part in ("input", "output")
        if part in model["operations"][op]
    ]
    todo += [e["shape"] for op in ops for e in model["operations"][op].get("errors", [])]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        shape = shapes[name]
        for key in ("member", "key", "value"):
            if key in shape:
                todo.append(shape[key]["shape"])
        for member in shape.get("members", {}).values():
            todo.append(member["shape"])
    return seen


def undocumented(node: Any) -> Any:
    """The model without its documentation strings (botocore reads them only for docstrings)."""
    if isinstance(node, dict):
        return {k: undocumented(v) for k, v in node.items() if k not in ("documentation", "documentationUrl")}
    if isinstance(node, list):
        return [undocumented(v) for v in node]
    return node


def trimmed(service: str) -> tuple[str, dict[str, Any]]:
    import botocore.session

    loader = botocore.session.get_session().get_component("data_loader")
    version = loader.determine_latest_version(service, "service-2")
    model = loader.load_service_model(service, "service-2", version)
    ops = {op for op in declared_operations(service) if op in model["operations"]}
    out = {k: v for k, v in model.items() if k not in ("operations", "shapes")}
    out["operations"] = {op: model["operations"][op] for op in sorted(ops)}
    out["shapes"] = {name: model["shapes"][name] for name in sorted(reachable(model, ops))}
    return version, undocumented(out)


def main() -> int:
    for service in SERVICES:
        version, model = trimmed(service)
        path = OUT / service / version / "service-2.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(model, sort_keys=True, separators=(",", ":")) + "\n")
        n_ops, n_shapes = len(model["operations"]), len(model["shapes"])
        sys.stdout.write(f"{path.relative_to(ROOT)}: {n_ops} operations, {n_shapes} shapes\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
