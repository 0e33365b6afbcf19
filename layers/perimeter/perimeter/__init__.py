"""Perimeter: guards the network perimeter of ML model deployments on AWS.

The package every Lambda function imports (shipped as the stack's layer), grouped by resource
kind: ``security_groups``, ``default_groups``, ``model_posture``, ``flow_logs``, ``iam``,
``network`` and ``review`` (the sweep), each with its pure evaluation and its event path,
beside ``core`` (the event edge, rules, controls, scoring, reports, the per-container runtime,
once-only acting), ``posture`` (what the posture kinds share), ``restore`` (undo), ``policy``
and ``adapters`` (the only modules that call AWS).
"""

__version__ = "0.1.0"
