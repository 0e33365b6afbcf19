"""The undo's exemptions on the SgGuard event path, checked inside the claim (issue 10).

The common answer is that no undo exemption covers the violating rules, so none is read: the
claim's transaction (with the write-ahead audit record, or alone in detect only) carries one
``ConditionCheck attribute_not_exists(pk)`` per key an exemption item could have (the rule's own,
and its control's ``*``). When one fails, nothing was written: the exemptions are read, the
group judged again and claimed again without the checks. Through the real handler on moto,
with the exemption items written as the undo writes them (``undo_items``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import perimeter.core.runtime
import perimeter.security_groups.service as service
import pytest
from perimeter.core.exemptions import undo_items
from perimeter.core.rules import Rule
from perimeter.core.runtime import Runtime, Settings

from tests.integration.test_io_path import Order
from tests.integration.test_sg_handler import (  # noqa: F401 - env is a fixture
    DEFAULT_EGRESS,
    IDEMPOTENCY_TABLE,
    authorize,
    env,
    event_id,
    tcp,
)
from tests.integration.test_undo import (  # noqa: F401 - undo_env is a fixture
    EXEMPTIONS_TABLE,
    UNDO_ROLE,
    WORLD_SSH,
    today,
    undo_env,
)

WORLD_RDP = (False, "tcp", 3389, 3389, "0.0.0.0/0")


def exempt(e: Any, gid: str, port: int | None, controls: tuple[str, ...], days: int = 7) -> None:
    """Exemption items as the undo writes them: for the world-open ``tcp/port`` rule, or (None)
    the whole group, per control; ``days`` from today (negative: expired, still in the table)."""
    rules = [Rule(gid, False, "tcp", port, port, cidr="0.0.0.0/0")] if port else []
    for item in undo_items(
        resource_id=gid,
        controls=controls,
        rules=rules,
        until=today() + dt.timedelta(days=days),
        actor=UNDO_ROLE,
        reason="test",
        audit_id="evt#" + gid,
        finding_id=None,
        now="2026-11-29T00:00:00Z",
    ):
        e.ddb.put_item(TableName=EXEMPTIONS_TABLE, Item=item)


class Transactions:
    """Every TransactWriteItems the handler sends, as its parameters (before serialisation)."""

    def __init__(self, e: Any) -> None:
        self.sent: list[list[dict[str, Any]]] = []
        e.session.events.register(
            "before-parameter-build.dynamodb.TransactWriteItems",
            lambda params, **_: self.sent.append(params["TransactItems"]),
        )
        # a client copies its session's hooks when it is built: build the handler's again
        perimeter.core.runtime.reset(Runtime(Settings.from_env(), session=e.session))

    def checks(self, n: int = 0) -> set[tuple[str, str]]:
        return {
            (c["ConditionCheck"]["Key"]["pk"]["S"], c["ConditionCheck"]["Key"]["sk"]["S"])
            for c in self.sent[n]
            if "ConditionCheck" in c
        }


def sg_key(gid: str, port: int) -> str:
    return f"{gid}|False|tcp|{port}|{port}|0.0.0.0/0"


def test_the_common_path_reads_no_exemption_the_claim_checks_them(undo_env: Any) -> None:  # noqa: F811
    e = undo_env
    tx = Transactions(e)
    order = Order(e.session)
    perimeter.core.runtime.reset(Runtime(Settings.from_env(), session=e.session))
    gid = e.group()
    e.invoke(authorize(e, gid, [tcp(22)]))  # warm: the VPC's routes cached
    order.calls.clear()
    tx.sent.clear()
    e.ops()
    assert e.invoke(authorize(e, gid, [tcp(3389)]))["status"] == "remediated"
    ops = e.ops()
    assert "Query" not in ops, ops
    assert len(ops) == 7, ops  # Describe, claim+audit+checks, revoke, ledger, import, publish, completion
    assert order.depth("RevokeSecurityGroupIngress") <= 3
    [items] = tx.sent
    assert [next(iter(i)) for i in items][:2] == ["Put", "Put"]  # the claim first, then the audit
    assert items[0]["Put"]["TableName"] == IDEMPOTENCY_TABLE
    assert all(
        c["ConditionCheck"]["TableName"] == EXEMPTIONS_TABLE
        and c["ConditionCheck"]["ConditionExpression"] == "attribute_not_exists(pk)"
        for c in items[2:]
    )
    key = sg_key(gid, 3389)
    assert tx.checks() == {
        (gid, f"PER-SG-1#{key}"),
        (gid, f"PER-SG-2#{key}"),
        (gid, "PER-SG-1#*"),
        (gid, "PER-SG-2#*"),
    }
    assert len(items) == 6  # no key twice (a transaction refuses two items with one key)
    assert WORLD_RDP not in e.rules(gid)


def test_an_exemption_for_one_rule_of_two_leaves_it_and_revokes_the_other(undo_env: Any) -> None:  # noqa: F811
    e = undo_env
    tx = Transactions(e)
    gid = e.group()
    exempt(e, gid, 22, ("PER-SG-1", "PER-SG-2"))
    event = authorize(e, gid, [tcp(22), tcp(3389)])
    e.ops()
    assert e.invoke(event)["status"] == "remediated"
    assert e.rules(gid) == {WORLD_SSH, DEFAULT_EGRESS}
    ops = e.ops()
    # the checked claim failed and wrote nothing; the exemptions were read; claimed again
    assert ops[ops.index("TransactWriteItems") :][:3] == ["TransactWriteItems", "Query", "TransactWriteItems"]
    assert tx.checks(0) and not tx.checks(1)
    record = e.audit(f"{event_id(event)}#{gid}")
    assert record is not None and [r["to_port"] for r in record["rules"]] == [3389]
    f1 = e.findings(gid)["PER-SG-1"]
    assert f1["Compliance"]["Status"] == "FAILED"
    assert "undone by" in f1["Description"]


def test_an_exemption_of_a_whole_control_protects_the_rule(undo_env: Any) -> None:  # noqa: F811
    e = undo_env
    gid = e.group()
    exempt(e, gid, None, ("PER-SG-1", "PER-SG-2"))
    assert e.invoke(authorize(e, gid, [tcp(22)]))["status"] == "reported"
    assert WORLD_SSH in e.rules(gid)
    f1 = e.findings(gid)["PER-SG-1"]
    assert f1["ProductFields"]["perimeter/action"] == "exempt"
    assert f1["Workflow"]["Status"] == "SUPPRESSED"


def test_an_expired_exemption_item_still_in_the_table_protects_nothing(undo_env: Any) -> None:  # noqa: F811
    e = undo_env
    gid = e.group()
    exempt(e, gid, 22, ("PER-SG-1", "PER-SG-2"), days=-1)  # past its day, not yet deleted by TTL
    e.ops()
    assert e.invoke(authorize(e, gid, [tcp(22)]))["status"] == "remediated"
    assert "Query" in e.ops()  # the check saw the item; the read judged it expired
    assert e.rules(gid) == {DEFAULT_EGRESS}


def test_a_duplicate_event_with_an_exemption_is_still_a_no_op(undo_env: Any) -> None:  # noqa: F811
    e = undo_env
    gid = e.group()
    exempt(e, gid, 22, ("PER-SG-1", "PER-SG-2"))
    event = authorize(e, gid, [tcp(22), tcp(3389)])
    first = e.invoke(event)
    assert first["status"] == "remediated"
    assert len(e.messages()) == 1
    e.ops()
    assert e.invoke(event) == first  # the stored result
    ops = e.ops()
    assert not {"RevokeSecurityGroupIngress", "BatchImportFindings", "Publish"} & set(ops), ops
    assert e.messages() == []


def test_detect_only_checks_the_same_and_reports_what_the_undo_exempted_as_exempt(
    undo_env: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    e = undo_env
    monkeypatch.setenv("PERIMETER_DRY_RUN", "true")
    tx = Transactions(e)  # builds the runtime again, from the dry-run environment
    exempted, other = e.group(), e.group()
    exempt(e, exempted, 22, ("PER-SG-1", "PER-SG-2"))
    e.ops()
    assert e.invoke(authorize(e, other, [tcp(22)]))["status"] == "reported"
    ops = e.ops()
    assert "Query" not in ops and ops.count("PutItem") == 1, (
        ops
    )  # the completion: the claim rode with its checks
    assert [next(iter(i)) for i in tx.sent[0]].count("Put") == 1  # the claim, no audit record
    assert tx.checks(0) == {
        (other, f"PER-SG-1#{sg_key(other, 22)}"),
        (other, f"PER-SG-2#{sg_key(other, 22)}"),
        (other, "PER-SG-1#*"),
        (other, "PER-SG-2#*"),
    }
    assert e.findings(other)["PER-SG-1"]["ProductFields"]["perimeter/action"] == "detected"

    assert e.invoke(authorize(e, exempted, [tcp(22)]))["status"] == "reported"
    assert "Query" in e.ops()
    f1 = e.findings(exempted)["PER-SG-1"]
    assert f1["ProductFields"]["perimeter/action"] == "exempt"
    assert f1["Workflow"]["Status"] == "SUPPRESSED"
    assert WORLD_SSH in e.rules(exempted) and WORLD_SSH in e.rules(other)


def test_too_many_keys_for_one_transaction_read_the_exemptions_first(
    undo_env: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    e = undo_env
    monkeypatch.setattr(service, "MAX_CHECKS", 3)  # the rule's four keys do not fit
    tx = Transactions(e)
    gid = e.group()
    exempt(e, gid, 22, ("PER-SG-1", "PER-SG-2"))
    e.ops()
    assert e.invoke(authorize(e, gid, [tcp(22), tcp(3389)]))["status"] == "remediated"
    ops = e.ops()
    assert ops.index("Query") < ops.index("TransactWriteItems")
    assert ops.count("TransactWriteItems") == 1 and not tx.checks(0)
    assert e.rules(gid) == {WORLD_SSH, DEFAULT_EGRESS}
