"""The organization's sweep: the fan-out planner, its dispatch, and one (account, region) swept.

The planner reads the organization from moto. moto's Lambda runs functions only in Docker, so the
dispatch's ``Invoke`` calls go to botocore's Stubber, which checks each call's parameters against
Lambda's service model; the swept pair then runs the real SweepFunction handler, as the
invocation would, against member B's moto backend.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from perimeter.core.runtime import Runtime, Settings
from perimeter.review import fanout

from tests.integration.test_organization import (
    REGION,
    SECURITY,
    Org,
    _audit_table,
    _findings,
    _ingress,
    _world_ssh_group,
)
from tests.integration.test_organization import org as org

REGIONS = ("us-east-1", "eu-west-1")


def test_the_plan_is_every_active_account_times_every_region(org: Org) -> None:
    got = fanout.active_accounts(org.security.client("organizations"))
    assert sorted(got) == sorted([SECURITY, *org.members])
    pairs = fanout.plan(got + got[:1], REGIONS)  # an account listed twice is planned once
    assert len(pairs) == 3 * 2
    assert pairs == sorted(pairs, key=lambda p: (p.account, REGIONS.index(p.region)))
    assert {(p.account, p.region) for p in pairs} == {(a, r) for a in got for r in REGIONS}


def test_list_accounts_is_read_page_by_page() -> None:
    client = boto3.client("organizations", region_name="us-east-1")
    with Stubber(client) as stub:
        acct = {"Id": "222222222222", "Status": "ACTIVE"}
        stub.add_response("list_accounts", {"Accounts": [acct], "NextToken": "t1"}, {})
        stub.add_response(
            "list_accounts",
            {
                "Accounts": [
                    {"Id": "333333333333", "Status": "SUSPENDED"},
                    {"Id": "444444444444", "Status": "ACTIVE"},
                ]
            },
            {"NextToken": "t1"},
        )
        assert fanout.active_accounts(client) == ["222222222222", "444444444444"]
        stub.assert_no_pending_responses()


def _stubbed_lambda(
    pairs: list[fanout.Pair], function: str, parent: str, fail: set[int] = frozenset()
) -> tuple[Any, Stubber]:  # type: ignore[assignment]
    client = boto3.client("lambda", region_name=REGION)
    stub = Stubber(client)
    for i, pair in enumerate(pairs):
        expected = {
            "FunctionName": function,
            "InvocationType": "Event",
            "Payload": json.dumps(pair.event(parent)).encode(),
        }
        if i in fail:
            stub.add_client_error(
                "invoke", "TooManyRequestsException", http_status_code=429, expected_params=expected
            )
        else:
            stub.add_response("invoke", {"StatusCode": 202}, expected)
    return client, stub


def test_dispatch_invokes_once_per_pair_asynchronously() -> None:
    pairs = fanout.plan(["222222222222", "333333333333"], REGIONS)
    fn = f"arn:aws:lambda:{REGION}:{SECURITY}:function:perimeter-sweep:live"
    client, stub = _stubbed_lambda(pairs, fn, "sweep-abc")
    fanout_workers = fanout.DISPATCH_WORKERS
    try:
        # Stubber answers in order: one worker keeps the calls in the planned order.
        fanout.DISPATCH_WORKERS = 1
        with stub:
            out = fanout.dispatch(pairs, client.invoke, fn, "sweep-abc")
            stub.assert_no_pending_responses()
    finally:
        fanout.DISPATCH_WORKERS = fanout_workers
    assert out == {"status": "dispatched", "pairs": 4, "function": fn}
    ev = pairs[0].event("sweep-abc")
    assert fanout.is_pair(ev) and fanout.parse_pair(ev) == pairs[0]
    assert ev["id"] == "sweep-abc-222222222222-us-east-1"


def test_a_refused_invocation_fails_the_dispatch_after_every_pair_was_tried() -> None:
    pairs = fanout.plan(["222222222222", "333333333333"], REGIONS)
    client, stub = _stubbed_lambda(pairs, "perimeter-sweep", "sweep-x", fail={1})
    fanout_workers = fanout.DISPATCH_WORKERS
    try:
        fanout.DISPATCH_WORKERS = 1
        with stub, pytest.raises(RuntimeError, match="1 of 4 sweep invocations failed"):
            fanout.dispatch(pairs, client.invoke, "perimeter-sweep", "sweep-x")
        stub.assert_no_pending_responses()  # the pairs after the refused one were still invoked
    finally:
        fanout.DISPATCH_WORKERS = fanout_workers


@pytest.mark.parametrize(
    "event",
    [
        {"perimeter": "sweep-pair", "account": "2222", "region": "us-east-1"},
        {"perimeter": "sweep-pair", "account": "222222222222", "region": ""},
        {"perimeter": "sweep-pair", "region": "us-east-1"},
    ],
)
def test_a_bad_pair_event_is_refused(event: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="sweep-pair event"):
        fanout.parse_pair(event)


def test_fan_out_plans_from_the_organization_and_invokes_the_alias(org: Org, monkeypatch: Any) -> None:
    monkeypatch.setenv("PERIMETER_SWEEP_REGIONS", ",".join(REGIONS))
    home = Runtime(
        Settings.from_env({"AWS_REGION": REGION, "PERIMETER_ACCOUNT_ID": SECURITY}), session=org.security
    )
    fn = f"arn:aws:lambda:{REGION}:{SECURITY}:function:perimeter-sweep:live"
    pairs = fanout.plan([SECURITY, *org.members], REGIONS)
    client, stub = _stubbed_lambda(pairs, fn, "sweep-scheduled-1")
    home._clients["lambda"] = client
    monkeypatch.setattr(fanout, "DISPATCH_WORKERS", 1)

    class Ctx:
        invoked_function_arn = fn

    with stub:
        out = fanout.fan_out({"id": "scheduled-1", "detail-type": "Scheduled Event"}, home, Ctx())
        stub.assert_no_pending_responses()
    assert out["pairs"] == 6


def test_one_pair_is_swept_in_its_member_account(org: Org) -> None:
    """A ``sweep-pair`` event for B: B's world-open SSH rule is revoked in B (the base policy
    enforces PER-SG-1), the finding is B's, the audit record names B; the security account's
    own groups are not swept by it."""
    b = org.members[0]
    sb = org.session_of(b)
    sb.client("securityhub").enable_security_hub(EnableDefaultStandards=False)
    _, gid = _world_ssh_group(sb)
    _, own_gid = _world_ssh_group(org.security)
    event = fanout.Pair(b, REGION).event("sweep-test")

    out = org.run("SweepFunction", event, **org.params)

    assert out["ok"], out
    assert out["result"]["account"] == b, out["result"]
    assert _ingress(sb, gid) == []
    assert _ingress(org.security, own_gid) != []  # not this pair's account
    ids = {f["Id"] for f in _findings(sb) if f["GeneratorId"] == "PER-SG-1"}
    assert any(i.startswith(f"perimeter/PER-SG-1/{b}/{REGION}/{gid}") for i in ids), ids
    assert {f["AwsAccountId"] for f in _findings(sb)} == {b}
    assert {r["account"] for r in _audit_table(org).scan()} == {b}


def test_a_pair_event_needs_organization_mode(org: Org) -> None:
    out = org.run("SweepFunction", fanout.Pair(org.members[0], REGION).event("sweep-test"))
    assert not out["ok"] and "not in organization mode" in out["error"]
