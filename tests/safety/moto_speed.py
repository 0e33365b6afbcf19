"""Four of moto's answers made proportional to what is asked, not to the size of the account.

The long safety runs build accounts of thousands of groups, findings and audit records, where
these moto implementations cost time in proportion to everything stored, on every call:

- an EC2 resource's tags: moto scans every tag of the region (a regex per tag) for each
  resource it lists; here the resource's own tags are read directly;
- ``DescribeSecurityGroupRules`` filtered by ``group-id``: moto copies every rule of the region,
  then filters; here only the named groups' rules are copied (then filtered the same way);
- ``GetFindings`` filtered by ``Id`` only: moto ignores ``Filters`` and serialises every finding;
  here it answers the findings with those ids, as Security Hub does (other filters: moto as is);
- ``TransactWriteItems``: moto deep-copies every table a transaction names, to restore it if the
  transaction fails; here the items it names are saved and put back instead.

Each answer is the one moto gives (``tests/safety/test_harness.py`` compares them on the same
account); only the time changes. ``fast_moto()`` applies them for the length of an account.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import types
from collections.abc import Iterator
from typing import Any
from unittest import mock

from moto.dynamodb.exceptions import TransactionCanceledException
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models import Table as DynamoTable
from moto.ec2.exceptions import InvalidGroupIdMalformedError
from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.models.security_groups import SecurityGroupBackend
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix, is_valid_security_group_id
from moto.securityhub.exceptions import InvalidInputException
from moto.securityhub.models import SecurityHubBackend
from moto.utilities.paginator import paginate

_ORIGINAL_RULES = SecurityGroupBackend.describe_security_group_rules
_ORIGINAL_TRANSACT = DynamoDBBackend.transact_write_items


def get_tags(self: Any) -> list[dict[str, str]]:
    """``TaggedEC2Resource.get_tags``: moto's ``describe_tags(resource-id=[id])``, read directly."""
    if not self.id:
        return []
    tags = self.ec2_backend.tags.get(self.id)
    if not tags:
        return []
    kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(self.id), "")
    return [{"resource_id": self.id, "key": k, "value": v, "resource_type": kind} for k, v in tags.items()]


def describe_security_group_rules(self: Any, sg_rule_ids: list[str], filters: dict[str, list[str]]) -> Any:
    wanted = (filters or {}).get("group-id")
    if sg_rule_ids or not wanted or any(c in v for v in wanted for c in "*?"):
        return _ORIGINAL_RULES(self, sg_rule_ids, filters)
    for group_id in wanted:
        if not is_valid_security_group_id(group_id):
            raise InvalidGroupIdMalformedError(group_id)
    ids = set(wanted)
    rules = [
        copy.copy(rule)
        for vpc_and_group in self.groups.values()
        for group in vpc_and_group.values()
        if group.id in ids
        for rule in list(itertools.chain(group.egress_rules, group.ingress_rules))
    ]
    for rule in rules:  # as moto: no port reads back as -1
        if rule.from_port is None:
            rule.from_port = -1
        if rule.to_port is None:
            rule.to_port = -1
    return [rule for rule in rules if rule.matches_filters(filters)]


def _ids_only(filters: dict[str, Any] | None) -> set[str] | None:
    if not filters or set(filters) != {"Id"}:
        return None
    values = filters["Id"]
    if not values or any(v.get("Comparison") != "EQUALS" for v in values):
        return None
    return {str(v.get("Value")) for v in values}


@paginate(pagination_model=SecurityHubBackend.PAGINATION_MODEL)
def get_findings(
    self: Any,
    filters: dict[str, Any] | None = None,
    sort_criteria: list[dict[str, str]] | None = None,
    max_results: int | None = None,
) -> list[dict[str, str]]:
    if max_results is not None:
        try:
            max_results = int(max_results)
        except ValueError:
            raise InvalidInputException(
                op="GetFindings", msg="MaxResults must be a number greater than 0"
            ) from None
        if max_results < 1 or max_results > 100:
            raise InvalidInputException(op="GetFindings", msg="MaxResults must be a number between 1 and 100")
    ids = _ids_only(filters)
    found = self.findings if ids is None else [f for f in self.findings if f.id in ids]
    return [f.as_dict() for f in found]


def _same_table(value: Any, memo: Any = None) -> Any:
    """``copy.deepcopy`` inside moto's transaction: a table is not copied (its items are saved
    by ``transact_write_items`` below); anything else is."""
    if isinstance(value, DynamoTable):
        return value
    return copy.deepcopy(value, memo)


def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    saved: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
    for entry in transact_items:
        if len(entry) != 1:
            break  # moto refuses it before writing anything
        op = next(iter(entry.values()))
        name = op.get("TableName") if isinstance(op, dict) else None
        if not name or name not in self.tables:
            continue
        table = self.tables[name]
        if "Key" in op:
            key = op["Key"]
        elif "Item" in op:
            key = {table.hash_key_attr: op["Item"].get(table.hash_key_attr)}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = op["Item"].get(table.range_key_attr)
        else:
            continue
        try:
            current = self.get_item(name, key)
        except Exception:  # noqa: BLE001 - a malformed key: moto's own call refuses it unwritten
            continue
        saved.append((name, key, copy.deepcopy(current.to_json()["Attributes"]) if current else None))
    shim = types.SimpleNamespace(copy=copy.copy, deepcopy=_same_table)
    try:
        with mock.patch("moto.dynamodb.models.copy", shim):
            _ORIGINAL_TRANSACT(self, transact_items)
    except BaseException as exc:
        if isinstance(exc, TransactionCanceledException) or type(exc).__name__ in (
            "MultipleTransactionsException",
            "MockValidationException",
        ):
            for name, key, attrs in reversed(saved):  # moto would have put the old tables back
                self.delete_item(name, key)
                if attrs is not None:
                    self.put_item(name, attrs)
        raise


@contextlib.contextmanager
def fast_moto() -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        stack.enter_context(mock.patch.object(TaggedEC2Resource, "get_tags", get_tags))
        stack.enter_context(
            mock.patch.object(
                SecurityGroupBackend, "describe_security_group_rules", describe_security_group_rules
            )
        )
        stack.enter_context(mock.patch.object(SecurityHubBackend, "get_findings", get_findings))
        stack.enter_context(mock.patch.object(DynamoDBBackend, "transact_write_items", transact_write_items))
        yield
