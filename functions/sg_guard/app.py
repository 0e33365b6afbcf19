"""SgGuard: security-group API calls (Authorize*, ModifySecurityGroupRules, CreateSecurityGroup).

Thin on purpose: parse, guard, decide and act live in ``perimeter.security_groups.service``. Errors are not
caught here: Lambda retries the event, then sends it to the dead-letter queue.
"""

import gc

# A cold start builds long-lived objects only (modules, service models, clients): collecting
# while it does is wasted work. Back on, with all of it frozen, at the end of this module.
gc.disable()
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from perimeter.core.org import runtime_for
from perimeter.core.runtime import get_runtime, init_container
from perimeter.core.telemetry import logger, metrics
from perimeter.security_groups import service as sg_service


@logger.inject_lambda_context(log_event=False, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return sg_service.handle(event, runtime_for(event, get_runtime()), context)


# In Lambda's init phase (and so in a SnapStart snapshot): the clients this function calls.
init_container(("ec2", "dynamodb", "securityhub", "sns"))
# Everything imported so far lives as long as the container: keep the collector off it.
gc.freeze()
gc.enable()
