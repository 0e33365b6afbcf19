"""Default security groups and tiers (DefaultSgGuard, PER-DSG-*, PER-TIER-1): the migration
plan (pure) and the event path (service)."""
