#!/usr/bin/env python3
"""Cloud Custodian's pull-mode equivalent of Perimeter's sweep, timed in-process.

Runs with the c7n virtual environment's interpreter (``.venv-c7n/bin/python``). The policy:
security groups with ingress from 0.0.0.0/0 -> ``remove-permissions`` of the matched rules,
the standard Custodian answer to "security groups with world-open ingress". Timed: the policy's
run (listing, filtering, the revokes), after the policy is loaded and validated and its session
and an EC2 client built (as Perimeter's side is timed after its init phase). Requests are
counted on the wire with the same ``before-send`` hook as ``c7n_baseline.py``. The last stdout
line is the JSON result.

    .venv-c7n/bin/python bench/c7n_sweep_baseline.py --endpoint http://127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from c7n_baseline import _configure_environment, install_request_counter

POLICY = {
    "name": "sg-world-open-ingress",
    "resource": "aws.security-group",
    "filters": [{"type": "ingress", "Cidr": {"value": "0.0.0.0/0"}}],
    "actions": [{"type": "remove-permissions", "ingress": "matched"}],
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--account", default="123456789012")
    args = parser.parse_args()
    _configure_environment(args.endpoint, args.region)
    counter = install_request_counter()

    from c7n.config import Config
    from c7n.loader import PolicyLoader
    from c7n.resources import load_resources

    load_resources(("aws.security-group",))
    with tempfile.TemporaryDirectory() as out_dir:
        config = Config.empty(
            region=args.region,
            regions=[args.region],
            account_id=args.account,
            output_dir=out_dir,
            cache="",
            cache_period=0,
            metrics_enabled=False,
            log_group=None,
        )
        policies = PolicyLoader(config).load_data({"policies": [POLICY]}, "memory://", validate=True)
        (policy,) = list(policies)
        # As Perimeter's side is timed after its init phase built its clients, Custodian's
        # session and an EC2 client are built before the clock (local_session caches the
        # session and botocore its loaded models, so the run's own client comes cheap).
        from c7n.utils import local_session

        local_session(policy.session_factory).client("ec2")
        counter.take()
        counter.enabled = True
        started = time.perf_counter()
        resources = policy()
        elapsed = time.perf_counter() - started
        counter.enabled = False
    calls = counter.take()
    print(
        json.dumps(
            {
                "tool": "cloud-custodian",
                "seconds": round(elapsed, 3),
                "matched": len(resources or []),
                "requests": sum(calls.values()),
                "by_operation": dict(sorted(calls.items())),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
