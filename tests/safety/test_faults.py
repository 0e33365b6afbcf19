"""Faults (issue 11, item 3): AWS failing under every acting path, and what survives.

Each scene (tests/safety/scenes.py) is one acting path: SgGuard's revoke, DefaultSgGuard's
migration, FlowLogGuard's flow log, ModelPosture's findings and flow log, IamGuard's finding.
The reference is the same scene run once without faults in its own account; a faulted run must
end, after Lambda's retries (or a redrive from the dead-letter queue), in exactly that state:
the same rules left, ENI groups, flow logs, findings (one per id, same compliance and record
state), audit records and number of notifications. Faults are injected with botocore event
hooks on the session the functions' clients come from (tests/safety/world.py).
"""

from __future__ import annotations

import json
from typing import Any

import perimeter.core.runtime as runtime
import pytest

from tests.safety.scenes import (
    SCENES,
    Scene,
    authorize,
    default_group,
    differences,
    group,
    profile,
    reference,
    rule_names,
    snapshot,
    tcp,
    vpc,
)
from tests.safety.world import (
    RESOURCE_SERVICES,
    RETRY_DELAYS,
    Clock,
    Crash,
    Killed,
    Plan,
    World,
    deployed,
    is_write,
)


def run(scene: Scene, plans: list[Plan | None]) -> tuple[World, Any, dict[str, Any], dict[str, Any]]:
    """The scene in a fresh account with these faults: (world, outcome, snapshot, names).
    The caller is inside no other account: moto keeps one global state."""
    cm = deployed()
    w = cm.__enter__()
    try:
        event = scene.setup(w)
        names = rule_names(w)
        out = w.deliver(scene.function_id, event, plans)
        return w, out, snapshot(w, rule_names=names), {"cm": cm, "event": event, "names": names}
    except BaseException:
        cm.__exit__(None, None, None)
        raise


def close(extra: dict[str, Any]) -> None:
    extra["cm"].__exit__(None, None, None)


ALL = sorted(SCENES)

ACTING = [s for s in ALL if s != "iam-invoke-on-star"]  # IamGuard only detects


# --- retries configured ----------------------------------------------------------------


def test_every_client_retries_throttling_with_backoff() -> None:
    """The clients the runtime builds retry in botocore's standard or adaptive mode, which
    back off on throttling codes (RequestLimitExceeded, ThrottlingException, ...)."""
    rt = runtime.Runtime(runtime.Settings.from_env({"AWS_REGION": "us-east-1"}))
    for service in ("ec2", "dynamodb", "securityhub", "sns", "sagemaker", "iam", "logs", "bedrock"):
        retries = rt.client(service).meta.config.retries
        assert retries["mode"] in ("standard", "adaptive"), (service, retries)
        assert retries.get("total_max_attempts", retries.get("max_attempts", 0)) >= 3, (service, retries)


# --- throttling on every call ----------------------------------------------------------------


@pytest.mark.parametrize("name", profile(ALL, {"default-sg-migration"}))
def test_throttling_on_every_call_is_absorbed_by_botocore(name: str) -> None:
    """Every request Perimeter sends is throttled twice before AWS answers: botocore's retries
    absorb it, the first invocation succeeds and the account ends as without throttling."""
    scene = SCENES[name]
    want, calls = reference(scene)
    w, out, got, extra = run(scene, [Plan(throttle_first=2)])
    try:
        assert out.ok and out.attempts == 1, out.error
        assert w.hooks.throttled >= 2 * len(calls), (w.hooks.throttled, calls)
        assert got == want
    finally:
        close(extra)


# --- a crash after every single write --------------------------------------------------------


def _write_points(name: str) -> list[tuple[str, int, str]]:
    _, calls = reference(SCENES[name])
    writes = [c for c in calls if is_write(c)]
    return [(name, k, op) for k, op in enumerate(writes, 1)]


def _crash_cases(kinds: tuple[type[BaseException], ...]) -> list[Any]:
    out = []
    for name in ALL:
        # the write sequences come from the scenes' fault-free runs (computed at collection)
        for n, k, op in _write_points(name):
            for kind in kinds:
                out.append(pytest.param(n, k, kind, id=f"{n}-after-{k}-{op}-{kind.__name__}"))
    return out


def _crash_then_retry(name: str, k: int, kind: type[BaseException]) -> None:
    scene = SCENES[name]
    want, calls = reference(scene)
    writes = [c for c in calls if is_write(c)]
    w, out, got, extra = run(scene, [Plan(crash_after_write=k, crash_kind=kind)])
    try:
        if not out.ok:
            # Both retries found the first attempt's claim still in progress (it expires when
            # that attempt's time would have run out): the event is in the DLQ; a redrive ends it.
            assert len(w.dlq) == 1 and w.dlq[0]["requestPayload"] == extra["event"], out.error
            (redriven,) = w.redrive()
            assert redriven.ok, redriven.error
            got = snapshot(w, rule_names=extra["names"])
        # The report's writes (finding import, message, completion) run together on the
        # container's pool: from the first of them on, the message may have gone out in
        # another thread before the process died, whatever the fault-free order was.
        report_from = min(
            (i for i, op in enumerate(writes, 1) if op in ("sns.Publish", "securityhub.BatchImportFindings")),
            default=len(writes) + 1,
        )
        sent_twice = "sns.Publish" in writes and k >= report_from
        if sent_twice:
            # SNS took the message, then the process died before the invocation ended: the
            # retry cannot know it was sent, so the message goes out once more (at least once).
            assert got.pop("notifications") in (want["notifications"], want["notifications"] + 1)
            want = {**want}
            want.pop("notifications")
        assert got == want, differences(got, want)
        # Exactly once: the event delivered again (a second redrive) changes nothing more.
        again = w.deliver(scene.function_id, extra["event"])
        assert again.ok and again.attempts == 1, again.error
        assert not [c for c in again.writes if c.split(".")[0] in RESOURCE_SERVICES], again.writes
        assert "securityhub.BatchImportFindings" not in again.calls and "sns.Publish" not in again.calls
        final = snapshot(w, rule_names=extra["names"])
        if sent_twice:
            final.pop("notifications")
        assert final == want, differences(final, want)
    finally:
        close(extra)


@pytest.mark.parametrize(("name", "k", "kind"), _crash_cases((Crash, Killed)))
@pytest.mark.long
def test_crash_after_every_write_then_retry_ends_as_fault_free(
    name: str, k: int, kind: type[BaseException]
) -> None:
    _crash_then_retry(name, k, kind)


def _report_window(name: str) -> list[tuple[str, int, str]]:
    """The writes from the last change to a resource up to the first send (Security Hub or
    SNS): the window where the change is done and its report exists only as Perimeter's own
    records (the audit record, the outbox, the migration's completion)."""
    points = _write_points(name)
    last = max(k for _, k, op in points if op.split(".")[0] in RESOURCE_SERVICES)
    first_send = min(k for _, k, op in points if op in ("sns.Publish", "securityhub.BatchImportFindings"))
    return [p for p in points if last <= p[1] < first_send]


def _sampled() -> list[Any]:
    """The short profile: a crash half-way through the migration, after the flow log is
    created, and at every write of the report window of the default-SG paths (the migration's
    completion and its report's outbox) and of ModelPosture's flow log (after the outbox write,
    the retry finds the VPC clean beside the model's other issues: the outbox's report is the
    one to send, found by the long run)."""
    out = []
    for name, at in (
        ("default-sg-migration", "ec2.ModifyNetworkInterfaceAttribute"),
        ("flow-log-create-vpc", "ec2.CreateFlowLogs"),
    ):
        n, k, op = next(p for p in _write_points(name) if p[2] == at)
        out.append(
            pytest.param(n, k, Killed if name.startswith("default") else Crash, id=f"{n}-after-{k}-{op}")
        )
    for name in ("default-sg-migration", "default-sg-authorize", "model-in-bare-vpc"):
        for i, (n, k, op) in enumerate(_report_window(name)):
            kind = (Crash, Killed)[i % 2]  # both kinds at every point: the long run
            out.append(pytest.param(n, k, kind, id=f"{n}-after-{k}-{op}-{kind.__name__}"))
    return out


@pytest.mark.parametrize(("name", "k", "kind"), _sampled())
def test_crash_after_a_write_then_retry_ends_as_fault_free(
    name: str, k: int, kind: type[BaseException]
) -> None:
    _crash_then_retry(name, k, kind)


# --- what the user sees while it is failing --------------------------------------------------


@pytest.mark.parametrize("name", profile(ACTING, set()))
def test_a_resource_write_is_never_unrecorded(name: str) -> None:
    """Killed right after each resource write (EC2, Logs): the audit table already holds a
    record naming what was changed (write-ahead), so nothing Perimeter did is unaccounted for
    even if every retry failed."""
    scene = SCENES[name]
    _, calls = reference(scene)
    writes = [c for c in calls if is_write(c)]
    for k, op in enumerate(writes, 1):
        if op.split(".")[0] not in RESOURCE_SERVICES:
            continue
        cm = deployed()
        w = cm.__enter__()
        try:
            event = scene.setup(w)
            out = w.invoke_once(scene.function_id, event, Plan(crash_after_write=k, crash_kind=Killed))
            assert not out.ok
            assert w.audit(), f"{name}: {op} (write #{k}) done with no audit record"
        finally:
            cm.__exit__(None, None, None)


# --- Security Hub rejects findings -------------------------------------------------------------


@pytest.mark.parametrize("name", profile(ALL, {"default-sg-migration"}))
def test_rejected_findings_fail_the_invocation_and_the_retry_reports(name: str) -> None:
    """BatchImportFindings answers 200 with FailedFindings: the invocation fails (never a
    silently lost finding), the retry imports them, and the end state is the fault-free one."""
    scene = SCENES[name]
    want, _ = reference(scene)
    _w, out, got, extra = run(scene, [Plan(reject_findings=1)])
    try:
        assert out.ok and out.attempts == 2
        assert got == want
    finally:
        close(extra)


@pytest.mark.parametrize("name", profile(ALL, {"flow-log-create-vpc"}))
def test_findings_rejected_on_every_attempt_land_in_the_dlq_and_a_redrive_finishes(name: str) -> None:
    scene = SCENES[name]
    want, _ = reference(scene)
    w, out, _, extra = run(scene, [Plan(reject_findings=1) for _ in range(3)])
    try:
        assert not out.ok and "reject" in str(out.error).lower()
        (dead,) = w.dlq
        assert dead["requestPayload"] == extra["event"]  # all a redrive needs
        assert w.findings() == [] or all(f["RecordState"] for f in w.findings())
        (redriven,) = w.redrive()
        assert redriven.ok
        assert snapshot(w, rule_names=extra["names"]) == want
        (again,) = [w.deliver(scene.function_id, extra["event"])]  # a second redrive: no-op
        assert again.ok and not [c for c in again.writes if c.split(".")[0] in RESOURCE_SERVICES]
        assert snapshot(w, rule_names=extra["names"]) == want
    finally:
        close(extra)


# --- SNS down ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", profile(ALL, {"model-in-bare-vpc"}))
def test_sns_down_then_retry_notifies_exactly_once(name: str) -> None:
    scene = SCENES[name]
    want, _ = reference(scene)
    down = Plan(fail={"sns.Publish": (1, "InternalError")})
    _w, out, got, extra = run(scene, [down])
    try:
        assert out.ok and out.attempts == 2
        assert got == want and got["notifications"] == want["notifications"] == 1
    finally:
        close(extra)


@pytest.mark.long
def test_sns_down_for_all_retries_lands_in_dlq_and_redrive_notifies_once() -> None:
    scene = SCENES["sg-world-ssh"]
    want, _ = reference(scene)
    down = Plan(fail={"sns.Publish": (1, "InternalError")})
    w, out, got, extra = run(scene, [down, down, down])
    try:
        assert not out.ok and len(w.dlq) == 1
        # what the user sees meanwhile: the rules are revoked, the findings say so, no message
        assert got["rules"] == want["rules"] and got["findings"] == want["findings"]
        assert got["notifications"] == 0
        w.redrive()
        assert snapshot(w, rule_names=extra["names"]) == want
    finally:
        close(extra)


# --- DynamoDB conditional-check failure -----------------------------------------------------


#: DynamoDB's answer when a write's condition fails, per write operation
CONDITION_FAILED = {
    "dynamodb.PutItem": "ConditionalCheckFailedException",
    "dynamodb.TransactWriteItems": "TransactionCanceledException",
    "dynamodb.UpdateItem": "ConditionalCheckFailedException",
}


def _conditional_cases() -> list[Any]:
    """Every DynamoDB write of every scene's fault-free run (counted per operation), in
    ``make test`` the first of each operation for the SG and default-SG paths."""
    out = []
    for name in ALL:
        _, calls = reference(SCENES[name])
        for op, code in CONDITION_FAILED.items():
            for nth in range(1, calls.count(op) + 1):
                short = nth == 1 and name in ("sg-world-ssh", "default-sg-migration")
                out.append(
                    pytest.param(
                        name,
                        op,
                        nth,
                        code,
                        id=f"{name}-{op}-{nth}",
                        marks=() if short else pytest.mark.long,
                    )
                )
    return out


@pytest.mark.parametrize(("name", "op", "nth", "code"), _conditional_cases())
def test_conditional_check_failure_then_retry(name: str, op: str, nth: int, code: str) -> None:
    """A DynamoDB write refused by its condition (the once-only claim, alone or in the
    write-ahead transaction, racing another container; the ledger or the completion): the
    invocation either finishes or fails; after Lambda's retries (or a redrive of the DLQ
    record) the account is in the fault-free state, and the event once more changes nothing."""
    scene = SCENES[name]
    want, _ = reference(scene)
    plan = Plan(fail={op: (nth, code)})
    w, out, got, extra = run(scene, [plan])
    try:
        if not out.ok:
            (redriven,) = w.redrive()
            assert redriven.ok, redriven.error
            got = snapshot(w, rule_names=extra["names"])
        assert got == want, differences(got, want)
        again = w.deliver(scene.function_id, extra["event"])
        assert again.ok and not [c for c in again.writes if c.split(".")[0] in RESOURCE_SERVICES]
        assert snapshot(w, rule_names=extra["names"]) == want
    finally:
        close(extra)


# --- the group vanishes, some rules vanish ---------------------------------------------------


def test_group_deleted_between_read_and_revoke() -> None:
    """InvalidGroup.NotFound on the revoke: nothing left to remove. The invocation succeeds,
    the group's findings are resolved as a deleted group's (PASSED/ARCHIVED, none FAILED for a
    group that no longer exists), and the audit record (written first) says nothing was
    removed, so a restore would not invent rules."""
    box: dict[str, Any] = {}

    def delete_group() -> None:
        box["w"].client("ec2").delete_security_group(GroupId=box["gid"])

    with deployed() as w:
        box["w"] = w
        gid = box["gid"] = group(w, vpc(w, "10.1.0.0/16"), "model-a")
        # an earlier event left a finding on the group: the model tier's allow-all egress (detect)
        first = authorize(w, gid, [tcp(443, "10.1.0.0/16")])
        assert w.deliver("SgGuardFunction", first).ok
        before = {f["GeneratorId"]: f["Compliance"]["Status"] for f in w.findings()}
        assert before == {"PER-SG-4": "FAILED"}, before
        event = authorize(w, gid, [tcp(22), tcp(3306)])
        plan = Plan(after={"ec2.DescribeSecurityGroups": (1, delete_group)})
        out = w.deliver("SgGuardFunction", event, [plan])
        assert out.ok and out.attempts == 1, out.error
        assert "ec2.RevokeSecurityGroupIngress" in out.calls
        assert out.result["deleted_before_revoke"] == [gid], out.result
        after = {f["GeneratorId"]: (f["Compliance"]["Status"], f["RecordState"]) for f in w.findings()}
        assert after == {"PER-SG-4": ("PASSED", "ARCHIVED")}, after
        (finding,) = w.findings()
        assert "deleted" in finding["Description"], finding["Description"]
        (record,) = w.audit()
        assert record["rules"] == [] and record["outcome"] == "group-deleted", record
        assert record["restore"] == {"ingress": [], "egress": []}


def test_revoke_that_removes_some_rules_and_not_others() -> None:
    """Someone removes one of the offending rules between Perimeter's read and its revoke, so
    AWS refuses the revoke by rule ids (InvalidSecurityGroupRuleId.NotFound). Perimeter revokes
    the rest; the audit record lists exactly what Perimeter removed; the ingress findings pass
    (no FAILED finding for the rule someone else removed) and the summary says it was gone."""
    scene = SCENES["sg-world-ssh"]
    box: dict[str, Any] = {}

    def remove_ssh() -> None:
        ec2 = box["w"].client("ec2")
        gid = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["model-a"]}])[
            "SecurityGroups"
        ][0]["GroupId"]
        ec2.revoke_security_group_ingress(
            GroupId=gid,
            IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
            ],
        )

    with deployed() as w:
        box["w"] = w
        event = scene.setup(w)
        names = rule_names(w)
        plan = Plan(after={"ec2.DescribeSecurityGroups": (1, remove_ssh)})
        out = w.deliver(scene.function_id, event, [plan])
        assert out.ok and out.attempts == 1, out.error
        got = snapshot(w, rule_names=names)
        assert got["rules"]["sg[vpc[10.1.0.0/16]/model-a]"] == [
            "in tcp 443-443 10.1.0.0/16",
            "out -1  0.0.0.0/0",
        ]
        (record,) = w.audit()
        removed = sorted(f"{r['protocol']}/{r['from_port']}" for r in record["rules"])
        assert removed == ["tcp/3306"], record["rules"]
        status = {f["GeneratorId"]: f["Compliance"]["Status"] for f in w.findings()}
        # the group's whole state: ingress clean; its allow-all egress is a true PER-SG-4 (detect)
        assert status == {"PER-SG-1": "PASSED", "PER-SG-2": "PASSED", "PER-SG-4": "FAILED"}, status
        (summary,) = out.result["groups"]
        actions = {(v["rule"], v["action"]) for v in summary["violations"] if v["control"] == "PER-SG-1"}
        assert actions == {("tcp/22 from 0.0.0.0/0", "already gone"), ("tcp/3306 from 0.0.0.0/0", "revoked")}


@pytest.mark.long
def test_eni_deleted_in_the_middle_of_a_migration() -> None:
    """An ENI on the default group is deleted while Perimeter moves the others: the migration
    finishes for the rest and the default group is emptied."""
    scene = SCENES["default-sg-migration"]
    box: dict[str, Any] = {}

    def delete_eni() -> None:
        ec2 = box["w"].client("ec2")
        eni = ec2.describe_network_interfaces(Filters=[{"Name": "description", "Values": ["eni-2"]}])[
            "NetworkInterfaces"
        ][0]["NetworkInterfaceId"]
        ec2.delete_network_interface(NetworkInterfaceId=eni)

    with deployed() as w:
        box["w"] = w
        event = scene.setup(w)
        plan = Plan(after={"ec2.ModifyNetworkInterfaceAttribute": (1, delete_eni)})
        out = w.deliver(scene.function_id, event, [plan])
        assert out.ok, out.error
        got = snapshot(w)
        assert set(got["enis"]) == {"eni[eni-0]", "eni[eni-1]"}
        assert all(g and "default" not in g[0] for g in got["enis"].values()), got["enis"]
        assert got["rules"]["sg[vpc[10.2.0.0/16]/default]"] == []


# --- the Lambda timeout in the middle of a default-SG migration ------------------------------


@pytest.mark.parametrize("points", profile(["middle", "every"], {"middle"}))
def test_timeout_mid_migration_leaves_every_eni_with_a_group_and_the_retry_finishes(points: str) -> None:
    scene = SCENES["default-sg-migration"]
    want, calls = reference(scene)
    writes = [c for c in calls if is_write(c)]
    moves = [k for k, c in enumerate(writes, 1) if c == "ec2.ModifyNetworkInterfaceAttribute"]
    for k in moves[len(moves) // 2 : len(moves) // 2 + 1] if points == "middle" else moves:
        cm = deployed()
        w = cm.__enter__()
        try:
            event = scene.setup(w)
            names = rule_names(w)
            timeout = w.specs[scene.function_id].timeout
            out = w.invoke_once(
                scene.function_id,
                event,
                Plan(crash_after_write=k, crash_kind=Killed),
                remaining_ms=timeout * 1000,
            )
            assert not out.ok and isinstance(out.error, Killed)
            mid = snapshot(w, rule_names=names)
            # what the user sees: every ENI keeps a group; the default group keeps its rules
            assert all(mid["enis"].values()), mid["enis"]
            vpc = w.client("ec2").describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.2.0.0/16"]}])
            dsg = default_group(w, vpc["Vpcs"][0]["VpcId"])
            assert mid["rules"]["sg[vpc[10.2.0.0/16]/default]"], "default emptied before its members moved"
            assert dsg
            started = [r for r in w.audit() if r.get("action") == "default-sg-migration"]
            assert started, "no audit record of a migration under way"
            Clock.advance(timeout + RETRY_DELAYS[0])  # Lambda retries a minute after the timeout
            retry = w.invoke_once(scene.function_id, event)
            assert retry.ok, retry.error
            end = snapshot(w, rule_names=names)
            print("DIFF", json.dumps(differences(end, want), default=str)[:3000])
            assert end == want
        finally:
            cm.__exit__(None, None, None)
