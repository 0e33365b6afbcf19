"""Sweep: the scheduled review of the whole region (an EventBridge schedule, or `perimeter sweep`).

Thin on purpose: listing, judging, acting and reconciling Security Hub live in
``perimeter.review.service``. Errors are not caught here: Lambda retries, then the event goes
to the dead-letter queue (every step of a sweep is safe to repeat).
"""

import gc

# A cold start builds long-lived objects only (modules, service models, clients): collecting
# while it does is wasted work. Back on, with all of it frozen, at the end of this module.
gc.disable()
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from perimeter.core import org
from perimeter.core.runtime import get_runtime, init_container
from perimeter.core.telemetry import logger, metrics
from perimeter.review import service


@logger.inject_lambda_context(log_event=False, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    home = get_runtime()
    # Organization mode: the schedule's event fans out one invocation per (account, region);
    # each of those sweeps its pair through the member role.
    if (isinstance(event, dict) and event.get("perimeter") == "sweep-pair") or org.enabled():
        from perimeter.review import fanout  # organization mode only: not on account mode's cold start

        if fanout.is_pair(event):
            return service.handle(event, fanout.pair_runtime(event, home), context)
        return fanout.fan_out(event, home, context)
    return service.handle(event, home, context)


# In Lambda's init phase (and so in a SnapStart snapshot): the clients this function calls.
init_container(("ec2", "sagemaker", "bedrock", "iam", "dynamodb", "securityhub", "sns"))
gc.freeze()
gc.enable()
