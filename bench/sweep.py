#!/usr/bin/env python3
"""Benchmark: Perimeter's sweep beside Cloud Custodian's pull-mode policy, same moto server.

For each size (groups) and tag setting, a fresh moto server runs in a separate process. It is
seeded serially (concurrent creation can crash moto): one VPC, N groups, each with a harmless
rule (tcp/443 from 10.0.0.0/8); 10% also get SSH from 0.0.0.0/0; "tagged" gives every group
three tags. Then, on the same server:

- Perimeter: the SweepFunction handler, in-process, with the runtime its init phase leaves
  (policy loaded, clients built, the pool's threads started, as ``init_container`` does in
  Lambda; what it built frozen out of the collector's way, as the handler module does), under a policy with
  only the security-group controls on (the comparable
  job: Custodian's policy does nothing else); every request counted with botocore's
  ``before-send`` hook; timed from the handler's start to its return.
- The offending rules are put back, then Cloud Custodian (``bench/c7n_sweep_baseline.py``
  in ``.venv-c7n``): security groups with ingress from 0.0.0.0/0 -> remove-permissions
  (matched), timed around the policy's run, requests counted the same way.

Both runs must leave no world-open rule, or the run fails. Printed per run: requests by
operation, wall time, and the floor:

- listing pages: one per listing page the job needs (moto returns every listing in one page:
  security groups, route tables, Perimeter's active findings, the findings ledger, the undo's
  exemptions);
- one revoke per offending group;
- the writes the project requires for each change: findings in batches of 100 (one per control
  and group), the write-ahead audit records (25 a batch), the ledger items that changed (100 a
  transaction) and one SNS message per sweep.

Targets (the last line says whether they were met; exit 1 if not): Perimeter's requests at
most 1.02x that floor, and its wall time no more than Custodian's. The issue's floor without
the required writes (listing pages + revokes) is printed as well.

    .venv/bin/python bench/sweep.py                       # 100 and 1000 groups, with and without tags
    .venv/bin/python bench/sweep.py --sizes 100,1000,5000 --tags none
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
C7N_PYTHON = Path(os.environ.get("C7N_PYTHON", ROOT / ".venv-c7n" / "bin" / "python"))
ACCOUNT, REGION = "123456789012", "us-east-1"
FAKE = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
}
WORLD_SSH = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
HARMLESS = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
#: the clients functions/sweep/app.py builds in Lambda's init phase
SWEEP_CLIENTS = ("ec2", "sagemaker", "bedrock", "iam", "dynamodb", "securityhub", "sns")
SG_ONLY = ("PER-SG-1", "PER-SG-2", "PER-SG-3", "PER-SG-4")

SERVER = """
import logging, sys
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)
s = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
s.start()
print("http://%s:%d" % s.get_host_and_port(), flush=True)
sys.stdin.read()
s.stop()
"""


class MotoProcess:
    """A moto server in its own process (neither tool shares its interpreter)."""

    def __enter__(self) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | FAKE
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def __exit__(self, *exc: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _ec2(session: Any) -> Any:
    """The harness's own EC2 client (seeding, checks): moto's tag scans on thousands of tagged
    groups, on a loaded machine, outlast botocore's default 60 s read timeout."""
    from botocore.config import Config

    return session.client(
        "ec2", config=Config(read_timeout=900, retries={"mode": "standard", "max_attempts": 5})
    )


def seed(session: Any, n: int, tagged: bool) -> list[str]:
    ec2 = _ec2(session)
    vpc = ec2.create_vpc(CidrBlock="10.90.0.0/16")["Vpc"]["VpcId"]
    offending = []
    for i in range(n):
        params: dict[str, Any] = {"GroupName": f"bench-{i}", "Description": "bench", "VpcId": vpc}
        if tagged:
            tags = [
                {"Key": "team", "Value": f"t{i % 7}"},
                {"Key": "env", "Value": "prod"},
                {"Key": "app", "Value": f"a{i}"},
            ]
            params["TagSpecifications"] = [{"ResourceType": "security-group", "Tags": tags}]
        gid = ec2.create_security_group(**params)["GroupId"]
        perms = [HARMLESS, WORLD_SSH] if i % 10 == 0 else [HARMLESS]
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=perms)
        if i % 10 == 0:
            offending.append(gid)
    return offending


def warm_server(session: Any, offending: list[str]) -> None:
    """Serve each EC2 call both tools make once before either clock starts: moto builds a
    response template on its first use, which otherwise the first tool to run (Perimeter)
    pays and the second does not. The listing also checks the seeding."""
    if world_open(session) != set(offending):
        raise SystemExit("seeding did not leave exactly the offending groups world-open")
    ec2 = _ec2(session)
    ec2.revoke_security_group_ingress(GroupId=offending[0], IpPermissions=[HARMLESS])
    ec2.authorize_security_group_ingress(GroupId=offending[0], IpPermissions=[HARMLESS])


def world_open(session: Any) -> set[str]:
    ec2 = _ec2(session)
    out = set()
    for page in ec2.get_paginator("describe_security_groups").paginate():
        for g in page["SecurityGroups"]:
            for p in g.get("IpPermissions", []):
                if any(r.get("CidrIp") == "0.0.0.0/0" for r in p.get("IpRanges", [])):
                    out.add(g["GroupId"])
    return out


def bench_policy() -> Any:
    from perimeter.policy import default_policy_text, load_policy_text

    text = default_policy_text()
    policy = load_policy_text(text)
    modes = {c: (m if c in SG_ONLY else "off") for c, m in policy.modes.items()}
    from dataclasses import replace

    return replace(policy, modes=modes)


def run_perimeter(session: Any, profile: str | None = None) -> dict[str, Any]:
    from perimeter.core import runtime
    from perimeter.review import service
    from perimeter_local.account import prepare
    from perimeter_local.template import functions

    template, resolver = prepare(session, ROOT / "template.yaml")
    spec = next(s for s in functions(template, resolver, ROOT) if s.logical_id == "SweepFunction")
    os.environ.update(spec.environment)
    # moto's DescribeSecurityGroups scans every tag per group returned: 5000 tagged groups on a
    # loaded machine outlast the template's 60 s (real AWS serves a 1000-group page in seconds).
    os.environ["PERIMETER_READ_TIMEOUT"] = "900"
    counted: collections.Counter[str] = collections.Counter()
    # The session the function builds in Lambda (runtime.Runtime.session: a botocore session on
    # the layer's trimmed models, with its one-service loader), the hooks on it.
    rt = runtime.Runtime(runtime.Settings.from_env())
    hooked = rt.session

    def count(request: Any, **kwargs: Any) -> None:
        counted[kwargs["event_name"].split(".", 1)[1]] += 1

    hooked.register("before-send", count)
    # Time spent waiting on requests (call to parsed answer), to tell moto's share from ours.
    in_flight: dict[int, float] = {}
    waited = [0.0]

    def before(model: Any, **kwargs: Any) -> None:
        in_flight[threading.get_ident()] = time.perf_counter()

    def after(model: Any, **kwargs: Any) -> None:
        waited[0] += time.perf_counter() - in_flight.pop(threading.get_ident(), time.perf_counter())

    hooked.register("before-call", before)
    hooked.register("after-call", after)
    rt.__dict__["policy"] = bench_policy()  # the comparable job: the SG controls only
    # As the function's init phase leaves it (functions/sweep/app.py: init_container), outside
    # the invocation: the clients built. Custodian's policy is likewise loaded and validated
    # before its clock starts.
    t_init = time.perf_counter()
    rt.warm(SWEEP_CLIENTS)  # the clients, the policy, the pool's threads
    init_seconds = time.perf_counter() - t_init
    # functions/sweep/app.py ends its init by freezing what it built: the collector's full
    # passes then skip the modules, models and clients (one such pass over them, mid-sweep,
    # cost 0.1 s at 100 groups).
    gc.freeze()
    from perimeter.core.telemetry import logger

    logger.setLevel("WARNING")
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    out = service.handle({"id": f"bench-{time.time_ns()}"}, rt)
    seconds = time.perf_counter() - started
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(str(profile))
    return {
        "seconds": round(seconds, 3),
        "init_seconds": round(init_seconds, 3),
        "requests": sum(counted.values()),
        "by_operation": dict(sorted(counted.items())),
        "request_seconds": round(waited[0], 3),
        "findings": out["counts"]["findings_raised"],
        "ledger_items": out["counts"]["ledger_items_written"],
        "revoked_groups": len(out["revoked"]),
        "exemptions_table": bool(rt.settings.exemptions_table),
    }


def run_c7n(endpoint: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.run(
        [str(C7N_PYTHON), str(ROOT / "bench" / "c7n_sweep_baseline.py"), "--endpoint", endpoint],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": ""},
        timeout=3600,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"c7n failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def floor(p: dict[str, Any], offending: int) -> dict[str, int]:
    """The fewest requests the job can take (see the module docstring), from what was seeded
    and what the sweep reported, never from the requests it made."""
    listings = {
        "DescribeSecurityGroups": 1,
        "DescribeRouteTables": 1,
        "GetFindings": 1,
        "Scan (findings ledger)": 1,
        # the undo's exemptions (a rule the undo restored stays until its exemption ends)
        "Scan (exemptions)": 1 if p["exemptions_table"] else 0,
    }
    return {
        "listing_pages": sum(listings.values()),
        "revokes": offending,
        "finding_batches": math.ceil(p["findings"] / 100),
        "audit_batches": math.ceil(offending / 25),
        "ledger_batches": math.ceil(p["ledger_items"] / 100),  # 100 a TransactWriteItems
        "notification": 1 if p["findings"] else 0,
    }


def one(n: int, tagged: bool, skip_c7n: bool, profile: str | None = None) -> dict[str, Any]:
    import boto3

    with MotoProcess() as endpoint:
        os.environ.update(FAKE)
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        session = boto3.session.Session()
        t0 = time.perf_counter()
        offending = seed(session, n, tagged)
        seeded_s = time.perf_counter() - t0
        warm_server(session, offending)
        p = run_perimeter(session, f"{profile}-{n}{'-tagged' if tagged else ''}.prof" if profile else None)
        if world_open(session):
            raise SystemExit("Perimeter left a world-open rule")
        if p["revoked_groups"] != len(offending):
            raise SystemExit(f"Perimeter revoked {p['revoked_groups']} groups, expected {len(offending)}")
        c = None
        if not skip_c7n:
            ec2 = _ec2(session)
            for gid in offending:
                ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[WORLD_SSH])
            c = run_c7n(endpoint)
            if world_open(session):
                raise SystemExit("Cloud Custodian left a world-open rule")
    f = floor(p, len(offending))
    total = sum(f.values())
    issue_floor = f["listing_pages"] + f["revokes"]
    return {
        "groups": n,
        "tagged": tagged,
        "offending": len(offending),
        "seed_seconds": round(seeded_s, 1),
        "perimeter": p,
        "c7n": c,
        "floor": f,
        "ratio": round(p["requests"] / total, 4),
        "ratio_listing_and_revokes_only": round(p["requests"] / issue_floor, 4),
        "c7n_ratio_listing_and_revokes_only": round(c["requests"] / (1 + len(offending)), 4) if c else None,
    }


def show(r: dict[str, Any]) -> None:
    p, c = r["perimeter"], r["c7n"]
    kind = "tagged" if r["tagged"] else "untagged"
    print(f"\n{r['groups']} groups ({r['offending']} offending), {kind}; seeded in {r['seed_seconds']} s")
    print(f"  Perimeter sweep   {p['seconds']:>8.2f} s  {p['requests']:>6} requests  {p['by_operation']}")
    print(
        f"                    {p['request_seconds']:>8.2f} s in requests (summed over threads); "
        f"init phase (clients built, not timed) {p['init_seconds']:.2f} s"
    )
    if c:
        print(f"  Cloud Custodian   {c['seconds']:>8.2f} s  {c['requests']:>6} requests  {c['by_operation']}")
    f = r["floor"]
    print(
        f"  floor {sum(f.values())} = {f['listing_pages']} listing pages + {f['revokes']} revokes + "
        f"{f['finding_batches']} finding batches + {f['audit_batches']} audit batches + "
        f"{f['ledger_batches']} ledger batches + "
        f"{f['notification']} notification; "
        f"Perimeter {r['ratio']}x (listing pages + revokes only: {r['ratio_listing_and_revokes_only']}x"
        + (f"; Custodian {r['c7n_ratio_listing_and_revokes_only']}x of 1 listing + revokes" if c else "")
        + ")"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="100,1000", help="comma-separated group counts (5000 takes minutes)"
    )
    parser.add_argument("--tags", choices=("both", "none", "tagged"), default="both")
    parser.add_argument("--skip-c7n", action="store_true")
    parser.add_argument("--json", action="store_true", help="also print every result as JSON")
    parser.add_argument(
        "--profile",
        metavar="PREFIX",
        help="cProfile Perimeter's sweep; stats written to PREFIX-<size>[-tagged].prof (pstats)",
    )
    parser.add_argument("--runs", type=int, default=1, help="runs of each size, interleaved")
    args = parser.parse_args()
    if not args.skip_c7n and not C7N_PYTHON.exists():
        raise SystemExit(f"{C7N_PYTHON} missing: run `make bench-deps`")
    sys.path.insert(0, str(ROOT / "local"))
    sizes = [int(s) for s in args.sizes.split(",") if s]
    tag_modes = {"both": (False, True), "none": (False,), "tagged": (True,)}[args.tags]
    results = []
    for _ in range(args.runs):
        for n in sizes:
            for tagged in tag_modes:
                r = one(n, tagged, args.skip_c7n, args.profile)
                show(r)
                results.append(r)
    if args.json:
        print(json.dumps(results))
    misses = []
    for r in results:
        label = f"{r['groups']}{' tagged' if r['tagged'] else ''}"
        if r["ratio"] > 1.02:
            misses.append(f"{label}: requests {r['ratio']}x the floor")
        if r["c7n"] and r["perimeter"]["seconds"] > r["c7n"]["seconds"]:
            misses.append(f"{label}: {r['perimeter']['seconds']} s > Custodian's {r['c7n']['seconds']} s")
    if misses:
        print("targets NOT met: " + "; ".join(misses))
        return 1
    print(
        "targets met: requests <= 1.02x the floor"
        + ("" if args.skip_c7n else ", wall time <= Cloud Custodian's")
        + " at every size"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
