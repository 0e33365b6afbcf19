"""Undo: the Security Hub custom action "Perimeter undo" (one event per selected finding).

Thin on purpose: the restore, the exemption and the finding's note live in ``perimeter.restore.undo``.
Errors are not caught here: Lambda retries the event, then sends it to the dead-letter queue.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from perimeter.core.runtime import get_runtime, init_container
from perimeter.core.telemetry import logger, metrics
from perimeter.restore import undo


@logger.inject_lambda_context(log_event=False, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return undo.handle(event, get_runtime(), context)


# In Lambda's init phase (and so in a SnapStart snapshot): the clients this function calls.
init_container(("ec2", "dynamodb", "securityhub"))
