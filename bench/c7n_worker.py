#!/usr/bin/env python3
"""Cloud Custodian's side of the fair benchmark: one warm c7n Lambda "container" over a pipe.

Run by ``bench/event_path.py`` with ``.venv-c7n``'s interpreter (c7n pins its own boto3), never
by hand. The policy, seeding and event are ``c7n_baseline``'s (ingress 0.0.0.0/0 ->
remove-permissions + post-finding + notify); the entry point is c7n's own Lambda entry,
``c7n.handler.dispatch_event``. Logs go where Lambda sends them: fd 1 and 2 to a log file,
with a root logging handler in Lambda's text format (the Python runtime installs one).

    c7n_worker.py serve ENDPOINT LOGFILE    # JSON lines: {"cmd": "event"} -> one timed event
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def lambda_like_stdio(logfile: str):  # type: ignore[no-untyped-def]
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    fd = os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("[%(levelname)s]\t%(asctime)s\t%(message)s"))
    logging.getLogger().addHandler(handler)
    return proto


def serve(endpoint: str, logfile: str) -> int:
    proto = lambda_like_stdio(logfile)
    sys.path.insert(0, str(BENCH))
    import c7n_baseline as cb
    from callclock import CallClock

    cb._configure_environment(endpoint, "us-east-1")
    clock = CallClock().install()

    import c7n.handler

    fixture = cb.seed("us-east-1")
    config = cb.policy_config(fixture)
    cb.validate_policy(config)
    name = f"custodian-{config['policies'][0]['name']}"
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"c7n-worker-{fixture.run_id}"
    workdir.mkdir(parents=True)
    (workdir / "config.json").write_text(json.dumps(config))
    os.chdir(workdir)  # dispatch_event reads ./config.json, as in its Lambda package

    proto.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("cmd") == "quit":
            break
        if cb.world_ssh_present(fixture):
            raise SystemExit("precondition: tcp/22 0.0.0.0/0 already open before the event")
        event = cb.cloudtrail_event(fixture, cb.open_world_ssh(fixture))
        context = cb.LambdaContext(name)
        clock.take()
        clock.enabled = True
        t0 = time.perf_counter()
        try:
            c7n.handler.dispatch_event(event, context)
        finally:
            t1 = time.perf_counter()
            clock.enabled = False
        calls = clock.take()
        if cb.world_ssh_present(fixture):
            raise SystemExit("c7n did not revoke the rule")
        names = [c.name for c in calls]
        missing = [op for op in cb.REQUIRED_OPERATIONS if op not in names]
        if missing:
            raise SystemExit(f"c7n skipped {missing}: {names}")
        revoke = next(c for c in calls if c.name.startswith("ec2.Revoke"))
        proto.write(
            json.dumps(
                {
                    "ms": (t1 - t0) * 1000,
                    "exposure_ms": ((revoke.end or t1) - t0) * 1000,
                    "calls": names,
                }
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(serve(sys.argv[2], sys.argv[3]) if sys.argv[1] == "serve" else 2)
