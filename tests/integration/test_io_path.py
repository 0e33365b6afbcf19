"""The SgGuard event path's I/O (issue 10): how many AWS round trips stand between the handler's
entry and the revoke returning, and that every write of the acting stage, though the
independent ones run together, still fails the invocation when it fails, so that Lambda's retry
finishes the work and nothing is lost.

Round trips are counted with botocore ``before-call`` / ``after-call`` hooks numbered from one
counter (an order, never a time): a call is one round trip after every call that returned
before it started. Faults are injected with a ``before-call`` hook that raises, i.e. a failure
that outlasted botocore's retries.
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_sg_handler import (  # noqa: F401 - env is a fixture
    DEFAULT_EGRESS,
    FINDINGS_TABLE,
    IDEMPOTENCY_TABLE,
    MOTO_ACCOUNT,
    REGION,
    Env,
    authorize,
    env,
    event_id,
    tcp,
)


class Order:
    """Each call's (name, started, returned) as positions in one sequence."""

    def __init__(self, session: Any) -> None:
        """Hook ``session`` before the runtime builds its clients from it (a client copies its
        session's hooks when it is created)."""
        self.calls: list[list[Any]] = []
        self._tick = itertools.count()
        self._lock = threading.Lock()
        self._open = threading.local()
        session.events.register("before-call", self._before)
        session.events.register("after-call", self._after)
        session.events.register("after-call-error", self._after)

    def _before(self, event_name: str, **_: Any) -> None:
        with self._lock:
            call = [event_name.rsplit(".", 1)[-1], next(self._tick), None]
            self.calls.append(call)
        self._open.call = call

    def _after(self, **_: Any) -> None:
        with self._lock:
            self._open.call[2] = next(self._tick)

    def depth(self, name: str) -> int:
        """Sequential round trips up to and including the first call ``name``."""
        depth: list[int] = []
        for i, (op, start, _) in enumerate(self.calls):
            earlier = [depth[j] for j, c in enumerate(self.calls[:i]) if c[2] is not None and c[2] < start]
            depth.append(1 + max(earlier, default=0))
            if op == name:
                return depth[i]
        raise AssertionError(f"{name} never called: {[c[0] for c in self.calls]}")


def test_the_revoke_returns_within_three_sequential_round_trips(env: Env) -> None:  # noqa: F811
    order = Order(env.session)
    gid = env.group()
    env.invoke(authorize(env, gid, [tcp(22)]))  # a warm container: the VPC's routes are cached
    order.calls.clear()
    event = authorize(env, gid, [tcp(3389)])
    assert env.invoke(event)["status"] == "remediated"
    assert order.depth("RevokeSecurityGroupIngress") <= 3
    before = [c[0] for c in order.calls[: [c[0] for c in order.calls].index("RevokeSecurityGroupIngress")]]
    # read, then the idempotency claim and the write-ahead audit record as one transaction
    assert before == ["DescribeSecurityGroups", "TransactWriteItems"]
    assert env.rules(gid) == {DEFAULT_EGRESS}
    audit = env.audit(f"{event_id(event)}#{gid}")
    assert audit is not None and audit["rules"][0]["to_port"] == 3389


def test_the_findings_ledger_is_written_beside_the_revoke(env: Env) -> None:  # noqa: F811
    """The ledger's UpdateItem records the group as it is once the revoke is done and runs
    beside the revoke (read, claim + audit, revoke + ledger, then the finding import,
    notification and completion together). The revoke is held until the ledger write has
    started: were they run one after the other, it would wait in vain."""
    order = Order(env.session)
    ledger_started = threading.Event()
    waited: list[bool] = []
    env.session.events.register("before-call.dynamodb.UpdateItem", lambda **_: ledger_started.set())
    env.session.events.register(
        "before-call.ec2.RevokeSecurityGroupIngress", lambda **_: waited.append(ledger_started.wait(10))
    )
    gid = env.group()
    env.invoke(authorize(env, gid, [tcp(22)]))  # warm: the VPC's routes are cached
    ledger_started.clear()
    waited.clear()
    order.calls.clear()
    assert env.invoke(authorize(env, gid, [tcp(3389)]))["status"] == "remediated"
    assert waited == [True]  # the ledger write had started before the revoke went out
    names = [c[0] for c in order.calls]
    assert names.index("TransactWriteItems") < names.index("UpdateItem")  # after the claim
    # what it recorded is the state after the revoke (every control passing: nothing failing
    # since, nothing created), not the state the read saw (PER-SG-1 and -2 failing)
    item = env.ddb.get_item(TableName=FINDINGS_TABLE, Key={"pk": {"S": _arn(gid)}})["Item"]
    assert "updated_at" in item
    assert not [k for k in item if k.startswith(("first:", "created:"))], item
    findings = env.findings(gid)
    assert {f["Compliance"]["Status"] for f in findings.values()} == {"PASSED"}


def _arn(gid: str) -> str:
    return f"arn:aws:ec2:{REGION}:{MOTO_ACCOUNT}:security-group/{gid}"


def test_a_failed_revoke_puts_the_ledger_back(env: Env) -> None:  # noqa: F811
    """The ledger write beside the revoke anticipates the rule gone (the control passing, its
    "failing since" dropped); when the revoke fails, the ledger is put back as it was, so the
    retry's finding keeps the first times."""
    gid = env.group()
    t0 = "2026-01-02T03:04:05.000Z"
    env.ddb.put_item(
        TableName=FINDINGS_TABLE,
        Item={
            "pk": {"S": _arn(gid)},
            "created:PER-SG-1": {"S": t0},
            "first:PER-SG-1": {"S": t0},
            "updated_at": {"S": t0},
        },
    )
    event = authorize(env, gid, [tcp(22)])
    failures = [0]

    def fail_once(**_: Any) -> None:
        if failures[0] == 0:
            failures[0] += 1
            raise ClientError({"Error": {"Code": "InternalFailure", "Message": "injected"}}, "Revoke")

    env.session.events.register("before-call.ec2.RevokeSecurityGroupIngress", fail_once)
    with pytest.raises(ClientError, match="injected"):
        env.invoke(event)
    item = env.ddb.get_item(TableName=FINDINGS_TABLE, Key={"pk": {"S": _arn(gid)}})["Item"]
    assert item["first:PER-SG-1"]["S"] == t0 and item["created:PER-SG-1"]["S"] == t0
    assert item["updated_at"]["S"] == t0
    assert "created:PER-SG-2" not in item  # written by the failed attempt, taken out again
    assert env.invoke(event)["status"] == "remediated"
    findings = env.findings(gid)
    assert findings["PER-SG-1"]["CreatedAt"] == t0
    assert findings["PER-SG-1"]["FirstObservedAt"] == t0


WRITES = [
    ("dynamodb", "TransactWriteItems"),  # claim + write-ahead audit record
    ("ec2", "RevokeSecurityGroupIngress"),
    ("securityhub", "BatchImportFindings"),
    ("sns", "Publish"),
    ("dynamodb", "UpdateItem"),  # the findings ledger, beside the revoke
    ("dynamodb", "PutItem"),  # the first: the idempotency completion, beside the report
]


@pytest.mark.parametrize(("service", "operation"), WRITES, ids=[w[1] for w in WRITES])
def test_a_failed_write_fails_the_invocation_and_the_retry_loses_nothing(
    env: Env,  # noqa: F811
    service: str,
    operation: str,
) -> None:
    gid = env.group()
    event = authorize(env, gid, [tcp(22)])
    failures = [0]

    def fail_once(**_: Any) -> None:
        if failures[0] == 0:
            failures[0] += 1
            raise ClientError({"Error": {"Code": "InternalFailure", "Message": "injected"}}, operation)

    env.session.events.register(f"before-call.{service}.{operation}", fail_once)
    with pytest.raises(ClientError, match="injected"):
        env.invoke(event)
    assert failures[0] == 1
    # the claim was released (deleted, or kept RELEASED naming the parts of the report that
    # went out beside the failure): Lambda's retry of the same event acts and reports the rest
    key = {"id": {"S": f"perimeter-sg-guard#{event_id(event)}"}}
    claim = env.ddb.get_item(TableName=IDEMPOTENCY_TABLE, Key=key).get("Item")
    assert claim is None or claim["status"]["S"] == "RELEASED", claim
    sent_first = {p: p in (claim or {}).get("sent", {}).get("SS", []) for p in ("findings", "note")}
    # the import and the message go out together: one failing, the other is named; the
    # UpdateItem is the ledger's, beside the revoke, before anything is reported; the completion
    # fails beside both, sent
    completion = operation == "PutItem"
    assert sent_first == {
        "findings": operation == "Publish" or completion,
        "note": operation == "BatchImportFindings" or completion,
    }
    retry = env.invoke(event)
    assert retry["status"] == "remediated"
    assert env.rules(gid) == {DEFAULT_EGRESS}
    findings = env.findings(gid)
    assert findings and {f["Compliance"]["Status"] for f in findings.values()} == {"PASSED"}
    # exactly one message over both attempts: the retry does not send again what went out
    (message,) = env.messages()
    assert message["MessageAttributes"]["action"]["Value"] == "revoked"
    assert env.audit(f"{event_id(event)}#{gid}") is not None
    done = env.ddb.get_item(TableName=IDEMPOTENCY_TABLE, Key=key)["Item"]
    assert done["status"]["S"] == "COMPLETED"
    # and a third delivery is a duplicate: its claim is refused (a conditional PutItem that
    # writes nothing) and nothing else is written or sent
    env.ops()
    assert env.invoke(event) == retry
    assert set(env.ops()) <= {"DescribeSecurityGroups", "PutItem", "GetItem"}
    assert env.messages() == []


def test_a_retried_claim_whose_first_attempt_landed_is_still_ours(env: Env) -> None:  # noqa: F811
    """botocore retries a call whose answer was lost (a timeout, a reset connection); if the
    first attempt wrote the claim, the retry's condition fails on our own record: still ours."""
    from perimeter.core.once import Claim, EventInProgress, OnceStore

    store = OnceStore(env.ddb, IDEMPOTENCY_TABLE, "fn")
    mine = Claim(store, "fn#e1", 60_000)
    mine.take()
    mine.take()  # the "retry": no error, still claimed
    assert mine.claimed
    with pytest.raises(EventInProgress):
        Claim(store, "fn#e1", 60_000).take()  # another invocation's claim is refused


def test_the_completion_writes_the_whole_record_and_only_over_its_own_claim(env: Env) -> None:  # noqa: F811
    """The completion is a PutItem of the whole record (status, result, the claim's token and
    expiration), on condition that the claim is still this invocation's: a completion arriving
    after another invocation took the event over is refused and writes nothing."""
    from perimeter.core.once import Claim, OnceStore

    store = OnceStore(env.ddb, IDEMPOTENCY_TABLE, "fn")

    def record(key: str) -> dict[str, Any]:
        return env.ddb.get_item(TableName=IDEMPOTENCY_TABLE, Key={"id": {"S": key}})["Item"]  # type: ignore[no-any-return]

    mine = Claim(store, "fn#e4", 60_000)
    mine.take()
    claimed = record("fn#e4")
    mine.complete({"status": "remediated"})
    done = record("fn#e4")
    assert done["status"]["S"] == "COMPLETED" and done["claim"]["S"] == mine.token
    assert done["data"]["S"] == '{"status": "remediated"}'
    assert done["expiration"] == claimed["expiration"]  # the table's TTL as the claim set it

    late = Claim(store, "fn#e5", 60_000)
    late.take()
    other = {**record("fn#e5"), "claim": {"S": "another-invocation"}}
    env.ddb.put_item(TableName=IDEMPOTENCY_TABLE, Item=other)  # taken over meanwhile
    with pytest.raises(ClientError, match="ConditionalCheckFailed"):
        late.complete({"status": "remediated"})
    assert record("fn#e5") == other


def test_a_released_claim_names_what_went_out_and_the_retry_skips_it(env: Env) -> None:  # noqa: F811
    """A stage that failed after part of its report went out releases its claim naming those
    parts: the retry's claim is refused, reads the record, takes it over and knows them; a
    second retry racing for the same released record is refused. A release with nothing sent
    leaves no record (the usual claim condition takes the event again)."""
    from perimeter.core.once import Claim, EventInProgress, OnceStore

    store = OnceStore(env.ddb, IDEMPOTENCY_TABLE, "fn")
    first = Claim(store, "fn#e2", 60_000)
    first.take()
    first.sent.add("note")
    first.release()
    item = env.ddb.get_item(TableName=IDEMPOTENCY_TABLE, Key={"id": {"S": "fn#e2"}})["Item"]
    assert item["status"]["S"] == "RELEASED" and item["sent"]["SS"] == ["note"]
    retry, racer = Claim(store, "fn#e2", 60_000), Claim(store, "fn#e2", 60_000)
    retry.take()
    assert retry.claimed and retry.sent == {"note"}
    with pytest.raises(EventInProgress):
        racer.take()
    retry.sent.add("findings")  # the retry fails too, after the import: both parts named
    retry.release()
    again = Claim(store, "fn#e2", 60_000)
    again.take()
    assert again.sent == {"findings", "note"}
    nothing = Claim(store, "fn#e3", 60_000)
    nothing.take()
    nothing.release()
    assert "Item" not in env.ddb.get_item(TableName=IDEMPOTENCY_TABLE, Key={"id": {"S": "fn#e3"}})
    fresh = Claim(store, "fn#e3", 60_000)
    fresh.take()
    assert fresh.sent == set()


def test_the_first_event_reads_the_route_tables_beside_the_group(env: Env) -> None:  # noqa: F811
    """A fresh container knows no VPC: the region's route tables are read beside the group
    (the group's VPC is known only once DescribeSecurityGroups returns), not after it, so the
    first event too reaches the revoke in three round trips; later events read none. The group
    read is held until the route-table read has started: run one after the other, it would
    wait in vain."""
    routes_started = threading.Event()
    waited: list[bool] = []
    env.session.events.register("before-call.ec2.DescribeRouteTables", lambda **_: routes_started.set())
    env.session.events.register(
        "before-call.ec2.DescribeSecurityGroups", lambda **_: waited.append(routes_started.wait(10))
    )
    gid = env.group()
    env.ops()
    result = env.invoke(authorize(env, gid, [tcp(22)]))
    assert result["status"] == "remediated"
    assert waited == [True]
    ops = env.ops()
    assert ops.count("DescribeRouteTables") == 1
    assert ops.index("DescribeRouteTables") < ops.index("TransactWriteItems")
    # the decision is the one the VPC's own route tables give: it routes to an internet gateway
    (violation, *_) = result["groups"][0]["violations"]
    assert any("routes to an internet gateway (+5)" in r for r in violation["reasons"]), violation
    assert env.invoke(authorize(env, gid, [tcp(3389)]))["status"] == "remediated"
    assert "DescribeRouteTables" not in env.ops()


class _Now:
    """A pool that runs each task as it is given (a deterministic order for the Stubber)."""

    def submit(self, fn: Any) -> Any:
        from concurrent.futures import Future

        future: Future[Any] = Future()
        try:
            future.set_result(fn())
        except Exception as exc:  # noqa: BLE001 - handed to the caller, as a pool would
            future.set_exception(exc)
        return future


def test_a_region_too_large_for_one_page_reads_the_vpc_on_its_own() -> None:
    """More route tables than one page holds: a VPC's tables could straddle pages, so the
    region-wide read is dropped and the group's VPC read with its filter, as before. Stubbed:
    moto ignores MaxResults and always answers with one page."""
    import boto3
    from botocore.stub import Stubber
    from perimeter.adapters.ec2 import Ec2Adapter

    client = boto3.client("ec2", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    ec2 = Ec2Adapter(client, pool=_Now())
    table = {
        "VpcId": "vpc-1",
        "RouteTableId": "rtb-1",
        "Routes": [{"DestinationCidrBlock": "10.0.0.0/16", "GatewayId": "local"}],
    }
    group = {"GroupId": "sg-1", "VpcId": "vpc-1", "GroupName": "g", "IpPermissions": []}
    with Stubber(client) as stub:
        stub.add_response(
            "describe_route_tables", {"RouteTables": [table], "NextToken": "more"}, {"MaxResults": 100}
        )
        stub.add_response("describe_security_groups", {"SecurityGroups": [group]}, {"GroupIds": ["sg-1"]})
        igw = {"DestinationCidrBlock": "0.0.0.0/0", "GatewayId": "igw-1", "State": "active"}
        routed = {**table, "Routes": [*table["Routes"], igw]}
        stub.add_response(
            "describe_route_tables",
            {"RouteTables": [routed]},
            {"Filters": [{"Name": "vpc-id", "Values": ["vpc-1"]}]},
        )
        ctx = ec2.group_context("sg-1", account=MOTO_ACCOUNT, region=REGION)
        stub.assert_no_pending_responses()
    assert ctx.vpc_cidrs == ("10.0.0.0/16",) and ctx.internet_routed is True
    # and the next group read tries the region-wide read again (nothing fresh was cached whole)
    with Stubber(client) as stub:
        stub.add_response("describe_route_tables", {"RouteTables": [routed]}, {"MaxResults": 100})
        stub.add_response("describe_security_groups", {"SecurityGroups": [group]}, {"GroupIds": ["sg-1"]})
        assert ec2.group_context("sg-1", account=MOTO_ACCOUNT, region=REGION).internet_routed is True
        stub.assert_no_pending_responses()
