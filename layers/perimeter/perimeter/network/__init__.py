"""Reachability of model ENIs from the internet (NetGuard, PER-NET-1): the evaluation (pure) and
the event path (service)."""
