"""The shared core: the event edge and guards, rules and CIDR arithmetic, the SG controls and
scoring, findings/notifications/audit records, the per-container runtime, once-only acting, the
report step, the IAM contract, organization mode and exemptions."""
