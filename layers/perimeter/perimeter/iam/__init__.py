"""Who may invoke a model (IamGuard, PER-IAM-1): the evaluation (pure) and the event path (service)."""
