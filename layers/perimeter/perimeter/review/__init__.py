"""The regular review (practice 8): the scheduled sweep and its controls PER-REV-1/2.

``evaluate`` is pure (which groups are unused, which rules are stale, which findings the sweep
resolves); ``service`` lists the region, runs the event path's own evaluations on every
resource, acts per mode and reconciles Security Hub.
"""
