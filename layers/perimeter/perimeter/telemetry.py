"""Structured logs and EMF metrics, shared by every function.

Powertools' Logger and Metrics are cheap to create (no AWS call, ~20 ms of imports) and are
meant to live at module level; the Tracer is left out on purpose: it loads the X-Ray SDK, which
alone would double a cold start (FACTS.md).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from perimeter.report import Outcome

# A compliant event emits no metric, and that is normal, not worth a warning per invocation.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger(service="perimeter")
metrics = Metrics(namespace="Perimeter", service="perimeter")


def record_decisions(outcomes: Iterable[Outcome]) -> None:
    """Findings and remediations, by control (one EMF dimension)."""
    from perimeter.report import action_of

    counts: dict[tuple[str, str], int] = {}
    for o in outcomes:
        for control_id, vs in o.decision.by_control().items():
            key = (control_id, action_of(vs, o))
            counts[key] = counts.get(key, 0) + 1
    for (control_id, action), n in counts.items():
        metrics.add_metric(name=f"Findings_{control_id}", unit=MetricUnit.Count, value=n)
        if action == "revoked":
            metrics.add_metric(name=f"Remediations_{control_id}", unit=MetricUnit.Count, value=n)
