"""VPC flow logs (FlowLogGuard, PER-FL-1): the evaluation (pure) and the event path (service)."""
