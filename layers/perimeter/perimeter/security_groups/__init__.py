"""Security groups (SgGuard, PER-SG-1..4): what a call changed, which groups to judge,
what each rule exposes, the evaluation (pure) and the event path (service)."""
