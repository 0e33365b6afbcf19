#!/usr/bin/env python3
"""Benchmark: Perimeter's whole event path for a world-open ingress event, on a moto server.

Prints, for the SgGuard handler (revoke + finding + notification + audit + idempotency):
- AWS API calls per violating event and per compliant event, by service and operation
  (counted with botocore's ``before-send`` hook on the handler's own session: real requests);
- median and p90 handler time over N events (each event a fresh world-open rule, created and
  checked outside the timed region; the rule must be gone afterwards or the run fails);
- the same for Cloud Custodian's equivalent cloudtrail-mode policy (remove-permissions +
  post-finding + notify) on the SAME moto server, and the ratio.

    .venv/bin/python bench/event_path.py --events 200
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def p90(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, round(0.9 * len(ordered)) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--skip-c7n", action="store_true", help="only Perimeter (no baseline)")
    args = parser.parse_args()

    import boto3
    from perimeter import runtime
    from perimeter_local import cloudtrail
    from perimeter_local.account import prepare
    from perimeter_local.embedded import embedded_aws
    from perimeter_local.invoke import LocalContext
    from perimeter_local.template import functions

    with embedded_aws() as endpoint:
        session = boto3.session.Session()
        template, resolver = prepare(session, ROOT / "template.yaml")
        spec = next(s for s in functions(template, resolver, ROOT) if s.logical_id == "SgGuardFunction")
        os.environ.update(spec.environment)
        os.environ["AWS_LAMBDA_FUNCTION_NAME"] = spec.function_name
        account, region = resolver.pseudo["AWS::AccountId"], resolver.pseudo["AWS::Region"]

        ec2 = session.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
        group = ec2.create_security_group(GroupName="bench", Description="bench", VpcId=vpc)["GroupId"]

        # The handler's own session, hooked to count every request it sends.
        counted: collections.Counter[str] = collections.Counter()
        hooked = boto3.session.Session()

        def count(request: Any, **kwargs: Any) -> None:
            counted[kwargs["event_name"].split(".", 1)[1]] += 1

        hooked.events.register("before-send", count)
        runtime.reset(runtime.Runtime(runtime.Settings.from_env(), session=hooked))

        mod_spec = importlib.util.spec_from_file_location("sg_guard_app", spec.module_path)
        assert mod_spec and mod_spec.loader
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)
        from perimeter.telemetry import logger as plogger

        sink = io.StringIO()
        for h in plogger.handlers:
            h.setStream(sink)  # type: ignore[attr-defined]

        def event_for(port: int, cidr: str) -> dict[str, Any]:
            perm = {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": cidr}]}
            before = {
                r["SecurityGroupRuleId"]
                for r in ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])[
                    "SecurityGroupRules"
                ]
            }
            ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[perm])
            created = [
                r
                for r in ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])[
                    "SecurityGroupRules"
                ]
                if r["SecurityGroupRuleId"] not in before
            ]
            return cloudtrail.authorize_event(
                account=account, region=region, group_id=group, permissions=[perm], created_rules=created
            )

        def run(event: dict[str, Any]) -> tuple[float, dict[str, Any]]:
            ctx = LocalContext(
                spec.function_name, spec.memory, "arn:aws:lambda:::function:bench", "r", 60, time.monotonic()
            )
            real_stdout = sys.stdout
            sys.stdout = sink  # EMF metrics go to stdout, as in Lambda
            try:
                t0 = time.perf_counter()
                out = module.lambda_handler(event, ctx)
                return (time.perf_counter() - t0) * 1000, out
            finally:
                sys.stdout = real_stdout
                sink.seek(0)
                sink.truncate()

        # warm-up (cold start of clients and policy), not timed
        run(event_for(22, "0.0.0.0/0"))
        counted.clear()
        _, out = run(event_for(22, "0.0.0.0/0"))
        violating_calls = dict(counted)
        assert out["status"] == "remediated", out
        counted.clear()
        ec2.authorize_security_group_ingress(
            GroupId=group,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 443,
                    "ToPort": 443,
                    "IpRanges": [{"CidrIp": "10.40.0.0/16"}],
                }
            ],
        )
        harmless = cloudtrail.authorize_event(
            account=account,
            region=region,
            group_id=group,
            permissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 443,
                    "ToPort": 443,
                    "IpRanges": [{"CidrIp": "10.40.0.0/16"}],
                }
            ],
            created_rules=None,
        )
        _, out = run(harmless)
        compliant_calls = dict(counted)
        assert out["status"] == "compliant", out

        samples = []
        for _ in range(args.events):
            ev = event_for(22, "0.0.0.0/0")
            ms, out = run(ev)
            if out["status"] != "remediated":
                raise SystemExit(f"event not remediated: {out}")
            left = [
                r
                for r in ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group]}])[
                    "SecurityGroupRules"
                ]
                if r.get("CidrIpv4") == "0.0.0.0/0" and not r["IsEgress"]
            ]
            if left:
                raise SystemExit(f"rule still present after the handler: {left}")
            samples.append(ms)

        ours = {
            "median_ms": round(statistics.median(samples), 1),
            "p90_ms": round(p90(samples), 1),
            "mean_ms": round(statistics.mean(samples), 1),
        }
        print(f"Perimeter SgGuard, {args.events} world-open ingress events on moto at {endpoint}")
        print(f"  calls per violating event: {json.dumps(violating_calls, sort_keys=True)}")
        print(f"  calls per compliant event: {json.dumps(compliant_calls, sort_keys=True)}")
        ec2_reads = sum(v for k, v in violating_calls.items() if k.startswith("ec2.Describe"))
        writes = [k for k in compliant_calls if not k.split(".")[1].startswith(("Describe", "Get"))]
        print(
            f"  EC2 reads per violating event: {ec2_reads}; writes on a compliant event: {writes or 'none'}"
        )
        print(
            f"  handler time: median {ours['median_ms']} ms, p90 {ours['p90_ms']} ms, "
            f"mean {ours['mean_ms']} ms"
        )

        if args.skip_c7n:
            return 0
        from c7n_against_moto import run_c7n_baseline

        base = run_c7n_baseline(endpoint, args.events)
        print(f"Cloud Custodian {base.get('version')} cloudtrail mode, same server, {base['events']} events")
        print(f"  calls per event: {json.dumps(base.get('calls_per_event'), sort_keys=True)}")
        print(f"  handler time: median {base['median_ms']} ms, p90 {base['p90_ms']} ms")
        print(
            f"Ratio Perimeter/c7n: median {ours['median_ms'] / base['median_ms']:.3f}, "
            f"p90 {ours['p90_ms'] / base['p90_ms']:.3f} (target <= 0.25)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
