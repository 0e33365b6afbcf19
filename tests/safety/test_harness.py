"""The harness's faster moto answers (tests/safety/moto_speed.py) are moto's answers.

Each is asked the same question as moto's own implementation on the same account, including
the cases it hands back to moto, and a failed transaction leaves every item as moto's rollback
does (a changed item restored, a created one gone)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.ec2.models import ec2_backends
from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.models.security_groups import SecurityGroupBackend
from moto.securityhub.models import SecurityHubBackend

from tests.safety import moto_speed
from tests.safety.scenes import tcp
from tests.safety.world import ACCOUNT, REGION, World


def _groups(w: World, n: int) -> list[str]:
    ec2 = w.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    out = []
    for i in range(n):
        tags = [
            {
                "ResourceType": "security-group",
                "Tags": [{"Key": "k", "Value": str(i)}, {"Key": "t", "Value": "x"}],
            }
        ]
        gid = ec2.create_security_group(
            GroupName=f"h{i}", Description="d", VpcId=vpc, TagSpecifications=tags
        )["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[tcp(22 + i)])
        out.append(gid)
    return out


def test_tags_are_moto_describe_tags(world: World) -> None:
    groups = _groups(world, 3)
    backend = ec2_backends[ACCOUNT][REGION]
    untagged = world.client("ec2").create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    for resource_id in [*groups, untagged]:
        resource = backend.get_security_group_from_id(resource_id) or backend.get_vpc(resource_id)
        want = backend.describe_tags(filters={"resource-id": [resource_id]})
        assert moto_speed.get_tags(resource) == want
        assert TaggedEC2Resource.get_tags is moto_speed.get_tags  # the account runs with it
    assert moto_speed.get_tags(backend.get_vpc(untagged)) == []


@pytest.mark.parametrize(
    "question",
    [
        lambda g: ([], {"group-id": [g[1]]}),
        lambda g: ([], {"group-id": [g[0], g[2]]}),
        lambda g: ([], {"group-id": [g[0], "sg-0123456789abcdef0"]}),  # one that does not exist
        lambda g: ([], {}),
    ],
)
def test_group_rules_are_moto_rules(world: World, question: Any) -> None:
    groups = _groups(world, 3)
    backend = ec2_backends[ACCOUNT][REGION]
    ids, filters = question(groups)

    def answer(fn: Any) -> list[tuple[str, str, Any, Any]]:
        rules = fn(backend, list(ids), {k: list(v) for k, v in filters.items()})
        return sorted((r.id, r.group_id, r.from_port, r.to_port) for r in rules)

    got = answer(moto_speed.describe_security_group_rules)
    assert got == answer(moto_speed._ORIGINAL_RULES)
    assert got, "a question with no answer would prove nothing"
    with pytest.raises(Exception, match=r"[Mm]alformed"):
        moto_speed.describe_security_group_rules(backend, [], {"group-id": ["bogus"]})
    assert SecurityGroupBackend.describe_security_group_rules is moto_speed.describe_security_group_rules


def test_findings_by_id_are_those_findings(world: World) -> None:
    hub = world.client("securityhub")
    base = {
        "SchemaVersion": "2018-10-08",
        "ProductArn": f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default",
        "GeneratorId": "PER-T",
        "AwsAccountId": ACCOUNT,
        "Types": ["Software and Configuration Checks"],
        "CreatedAt": "2026-01-01T00:00:00Z",
        "UpdatedAt": "2026-01-01T00:00:00Z",
        "Severity": {"Label": "LOW"},
        "Title": "t",
        "Description": "d",
        "Resources": [{"Type": "Other", "Id": "r"}],
    }
    hub.batch_import_findings(Findings=[{**base, "Id": f"f{i}"} for i in range(150)])
    asked = {"Id": [{"Value": v, "Comparison": "EQUALS"} for v in ("f3", "f120", "nope")]}
    got = hub.get_findings(Filters=asked, MaxResults=100)
    assert sorted(f["Id"] for f in got["Findings"]) == ["f120", "f3"] and not got.get("NextToken")
    # any other filter: moto as is (every finding, 100 a page)
    other = {"GeneratorId": [{"Value": "PER-", "Comparison": "PREFIX"}]}
    pages = [hub.get_findings(Filters=other, MaxResults=100)]
    pages.append(hub.get_findings(Filters=other, MaxResults=100, NextToken=pages[0]["NextToken"]))
    assert [len(p["Findings"]) for p in pages] == [100, 50]
    assert SecurityHubBackend.get_findings is moto_speed.get_findings
    with pytest.raises(ClientError):
        hub.get_findings(Filters=asked, MaxResults=101)


def _table(world: World) -> tuple[Any, str]:
    ddb = world.client("dynamodb")
    ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.put_item(TableName="t", Item={"pk": {"S": "a"}, "v": {"N": "1"}})
    return ddb, "t"


def _items(ddb: Any) -> list[Any]:
    return sorted((i["pk"]["S"], i.get("v", {}).get("N")) for i in ddb.scan(TableName="t")["Items"])


def test_a_cancelled_transaction_leaves_every_item_as_it_was(world: World) -> None:
    ddb, _ = _table(world)
    assert DynamoDBBackend.transact_write_items is moto_speed.transact_write_items
    items = [
        {
            "Update": {
                "TableName": "t",
                "Key": {"pk": {"S": "a"}},
                "UpdateExpression": "SET v = :n",
                "ExpressionAttributeValues": {":n": {"N": "2"}},
            }
        },
        {"Put": {"TableName": "t", "Item": {"pk": {"S": "b"}, "v": {"N": "9"}}}},
        {
            "Put": {
                "TableName": "t",
                "Item": {"pk": {"S": "c"}},
                "ConditionExpression": "attribute_exists(pk)",
            }
        },
    ]
    with pytest.raises(ClientError, match="TransactionCanceled"):
        ddb.transact_write_items(TransactItems=items)
    assert _items(ddb) == [("a", "1")]  # the update undone, the put gone
    # the same transaction without the failing condition goes through whole
    ddb.transact_write_items(TransactItems=items[:2])
    assert _items(ddb) == [("a", "2"), ("b", "9")]
    # two operations on one item: refused after the first was applied; it is undone
    twice = {"Put": {"TableName": "t", "Item": {"pk": {"S": "b"}, "v": {"N": "10"}}}}
    with pytest.raises(ClientError):
        ddb.transact_write_items(TransactItems=[twice, twice])
    assert _items(ddb) == [("a", "2"), ("b", "9")]
    assert len(dynamodb_backends[ACCOUNT][REGION].tables) > 1  # the stack's tables are untouched
