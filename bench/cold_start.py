#!/usr/bin/env python3
"""Benchmark: a fresh process to its first event handled, Perimeter beside Cloud Custodian.

Each sample is a new interpreter started as Lambda starts one (``python -S`` with the function's
code, its layer and its packages on sys.path), which imports the handler and handles one
world-open ingress event against the same moto server (its own process), alternating the two
tools. Timed from the process being spawned to it reporting the event handled; the rule must be
gone afterwards. Target (issue 10): Perimeter's median <= 1/2 of Cloud Custodian's.

    .venv/bin/python bench/cold_start.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from fair import BENCH, C7N_PYTHON, ROOT, clean_env, log_dir, median, moto_process, verdict

TARGET = 0.5
WORLD_SSH = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}


def purelib(python: Path | str) -> str:
    out = subprocess.run(
        [str(python), "-c", "import sysconfig;print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def spawn(argv: list[str], env: dict[str, str], cwd: Path, logfile: Path) -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, cwd=cwd, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    elapsed = (time.perf_counter() - t0) * 1000
    proc.wait(timeout=60)
    if not line.strip() or proc.returncode != 0:
        tail = logfile.read_text(errors="replace").splitlines()[-20:] if logfile.exists() else []
        raise SystemExit(f"cold child failed ({argv[3]}):\n" + "\n".join(tail))
    if line.strip() not in ("remediated", "done"):
        raise SystemExit(f"cold child answered {line.strip()!r}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if not C7N_PYTHON.exists():
        raise SystemExit(f"Cloud Custodian venv missing ({C7N_PYTHON}): run `make bench-deps`")

    with moto_process() as endpoint, log_dir() as logs:
        os.environ.update(clean_env(AWS_ENDPOINT_URL=endpoint))
        sys.path.insert(0, str(BENCH))
        import boto3
        import c7n_baseline as cb
        from perimeter_local import cloudtrail
        from perimeter_local.account import prepare
        from perimeter_local.template import functions

        session = boto3.session.Session()
        template, resolver = prepare(session, ROOT / "template.yaml")
        spec = next(s for s in functions(template, resolver, ROOT) if s.logical_id == "SgGuardFunction")
        account = resolver.pseudo["AWS::AccountId"]
        ec2 = session.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.41.0.0/16")["Vpc"]["VpcId"]
        group = ec2.create_security_group(GroupName="cold", Description="cold", VpcId=vpc)["GroupId"]
        fixture = cb.seed("us-east-1")
        c7n_dir = logs / "c7n"
        c7n_dir.mkdir()
        (c7n_dir / "config.json").write_text(json.dumps(cb.policy_config(fixture)))

        p_env = clean_env(
            AWS_ENDPOINT_URL=endpoint,
            AWS_LAMBDA_FUNCTION_NAME=spec.function_name,
            AWS_LAMBDA_INITIALIZATION_TYPE="on-demand",
            **spec.environment,
        )
        c_env = clean_env(AWS_ENDPOINT_URL=endpoint, AWS_LAMBDA_INITIALIZATION_TYPE="on-demand")
        p_site, c_site = purelib(sys.executable), purelib(C7N_PYTHON)
        child = str(BENCH / "cold_child.py")
        fn_dir, layer = ROOT / "functions" / "sg_guard", ROOT / "layers" / "perimeter"

        def perimeter_once() -> float:
            created = ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[WORLD_SSH])
            event = cloudtrail.authorize_event(
                account=account,
                region="us-east-1",
                group_id=group,
                permissions=[WORLD_SSH],
                created_rules=created["SecurityGroupRules"],
            )
            path = logs / "p-event.json"
            path.write_text(json.dumps(event))
            log = logs / "perimeter.log"
            argv = [
                sys.executable,
                "-S",
                child,
                "perimeter",
                p_site,
                str(path),
                str(log),
                str(fn_dir),
                str(layer),
            ]
            ms = spawn(argv, p_env, ROOT, log)
            if ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["IpPermissions"]:
                raise SystemExit("Perimeter's cold run left the rule open")
            return ms

        def c7n_once() -> float:
            event = cb.cloudtrail_event(fixture, cb.open_world_ssh(fixture))
            path = logs / "c-event.json"
            path.write_text(json.dumps(event))
            log = logs / "c7n.log"
            ms = spawn(
                [str(C7N_PYTHON), "-S", child, "c7n", c_site, str(path), str(log)], c_env, c7n_dir, log
            )
            if cb.world_ssh_present(fixture):
                raise SystemExit("c7n's cold run left the rule open")
            return ms

        ours: list[float] = []
        theirs: list[float] = []
        for i in range(args.runs):
            if i % 2 == 0:
                ours.append(perimeter_once())
                theirs.append(c7n_once())
            else:
                theirs.append(c7n_once())
                ours.append(perimeter_once())
    ratio = median(ours) / median(theirs)
    print(f"cold: fresh process to first event handled, {args.runs} alternating samples per tool")
    print(f"  Perimeter: median {median(ours):.0f} ms (min {min(ours):.0f}, max {max(ours):.0f})")
    print(f"  c7n:       median {median(theirs):.0f} ms (min {min(theirs):.0f}, max {max(theirs):.0f})")
    print(f"  ratio {ratio:.2f} (goal <= {TARGET})")
    misses = [f"cold ratio {ratio:.2f} > {TARGET}"] if ratio > TARGET else []
    return verdict(misses, "cold start (fresh process to first event <= 1/2 of c7n)")


if __name__ == "__main__":
    sys.exit(main())
