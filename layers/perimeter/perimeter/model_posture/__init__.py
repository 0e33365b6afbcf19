"""Model deployments (ModelPosture: PER-VPC-1/2, PER-TIER-1, PER-GR-1): the evaluations (pure)
and the event path (service)."""
