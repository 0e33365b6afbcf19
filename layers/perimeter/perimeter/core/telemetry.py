"""Structured logs and EMF metrics, shared by every function.

Powertools' Logger and Metrics are cheap to create (no AWS call, ~20 ms of imports) and are
meant to live at module level; the Tracer is left out on purpose: it loads the X-Ray SDK, which
alone would double a cold start (FACTS.md).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

# A compliant event emits no metric, and that is normal, not worth a warning per invocation.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger(service="perimeter")
metrics = Metrics(namespace="Perimeter", service="perimeter")


#: Finding actions that mean Perimeter changed something.
REMEDIATED = frozenset({"revoked", "moved", "created"})


def record_findings(findings: Iterable[Mapping[str, Any]]) -> None:
    """Findings and remediations, by control (one finding is one (control, resource))."""
    for f in findings:
        control = f["GeneratorId"]
        metrics.add_metric(name=f"Findings_{control}", unit=MetricUnit.Count, value=1)
        if f.get("ProductFields", {}).get("perimeter/action") in REMEDIATED:
            metrics.add_metric(name=f"Remediations_{control}", unit=MetricUnit.Count, value=1)
