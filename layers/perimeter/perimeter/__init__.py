"""Perimeter: guards the network perimeter of ML model deployments on AWS.

The package every Lambda function imports (shipped as the stack's layer). Pure core:
``events``, ``changes``, ``rules``, ``netmath``, ``policy``, ``controls``, ``scoring``,
``decide``, ``report``. AWS access only in ``adapters``; per-container state in ``runtime``.
"""

__version__ = "0.1.0"
