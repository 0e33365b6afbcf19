"""The real CloudTrail corpus (``tests/corpus_data/cloudtrail``), for tests of every issue.

The records are published by others and kept here with their provenance and licence terms
(``tests/corpus_data/cloudtrail/SOURCES.md``: some files stay under MPL-2.0 or CC-BY-SA-4.0).
A missing record is an error that names the path, never a silent skip. Two layers:

- pure: ``corpus_dir()``, ``load(name)``, ``records(*event_names)``, ``detail(record)``,
  ``retarget(record, ...)`` (substitute account, region, ids so a record speaks about resources
  that exist in moto).
- moto: ``replay_sg_record(ec2, record, vpc_id=..., tags=...)`` creates a real security group
  (and, for Authorize* records, the rules the record says were added, so they exist the way they
  would after the real call), then returns the record retargeted at it, wrapped in the
  EventBridge envelope, ready for a handler. ``ReplayedRecord`` carries the event, the group id
  and the record-rule-id -> real-rule-id map.

Example (inside ``mock_aws``)::

    from tests.corpus import load, replay_sg_record

    ec2 = boto3.client("ec2", region_name="us-east-1")
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    replayed = replay_sg_record(ec2, load("AuthorizeSecurityGroupIngress/reflex-1.json"), vpc_id=vpc_id)
    lambda_handler(replayed.event, context)
    ec2.describe_security_groups(GroupIds=[replayed.group_id])

Import it as ``tests.corpus`` (pytest's ``pythonpath = ["."]`` in pyproject.toml puts the repo
root on ``sys.path``).
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MOTO_ACCOUNT = "123456789012"
REGION = "us-east-1"


CORPUS_DIR = Path(__file__).resolve().parent / "corpus_data" / "cloudtrail"


class CorpusMissing(FileNotFoundError):
    """A corpus record or folder the tests need is not in the checkout."""


def corpus_dir() -> Path:
    """``tests/corpus_data/cloudtrail`` in this checkout."""
    if not CORPUS_DIR.is_dir():
        raise CorpusMissing(f"the CloudTrail corpus is missing: {CORPUS_DIR} (restore it from git)")
    return CORPUS_DIR


def load(name: str) -> dict[str, Any]:
    """One record by its path under the corpus, e.g. ``"CreateSecurityGroup/panther-1.json"``."""
    path = corpus_dir() / name
    if not path.is_file():
        raise CorpusMissing(f"corpus record missing: {path}")
    return json.loads(path.read_text(encoding="utf-8"))


def records(*event_names: str) -> list[tuple[str, dict[str, Any]]]:
    """``(name, record)`` for every record of these event names, sorted by name; an event name
    with no record is an error (a parametrized test must never collect an empty set)."""
    out = []
    for event_name in event_names:
        paths = sorted((corpus_dir() / event_name).glob("*.json"))
        if not paths:
            raise CorpusMissing(f"no corpus record for {event_name} under {corpus_dir()}")
        for path in paths:
            out.append((f"{event_name}/{path.name}", json.loads(path.read_text(encoding="utf-8"))))
    return out


def detail(record: Mapping[str, Any]) -> dict[str, Any]:
    """The CloudTrail record itself, whether or not it came in an EventBridge envelope."""
    inner = record.get("detail")
    return dict(inner) if isinstance(inner, Mapping) and "eventName" in inner else dict(record)


def _replace_strings(value: Any, mapping: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return mapping.get(value, value)
    if isinstance(value, list):
        return [_replace_strings(v, mapping) for v in value]
    if isinstance(value, dict):
        return {k: _replace_strings(v, mapping) for k, v in value.items()}
    return value


def retarget(
    record: Mapping[str, Any],
    *,
    account: str = MOTO_ACCOUNT,
    region: str = REGION,
    group_id: str | None = None,
    rule_ids: Mapping[str, str] | None = None,
    event_id: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A copy of the record (bare CloudTrail detail, no envelope) about our own resources:
    every occurrence of the record's group id, rule ids, account id and the ``extra`` strings is
    replaced; region and event id are set. A placeholder event id (``...``) gets a fresh one."""
    d = copy.deepcopy(detail(record))
    mapping: dict[str, str] = {**(extra or {}), **(rule_ids or {})}
    mapping.update(dict.fromkeys(_account_ids(record, d), account))
    old_group = _record_group_id(d) if group_id is not None else None
    if old_group and old_group.startswith("sg-"):
        mapping[old_group] = group_id  # type: ignore[assignment]
    d = _replace_strings(d, mapping)
    if old_group and not old_group.startswith("sg-"):
        # A redacted id ("...") also stands for other redacted fields: set the group fields only.
        for part in ("requestParameters", "responseElements"):
            if isinstance(d.get(part), dict) and d[part].get("groupId") == old_group:
                d[part]["groupId"] = group_id
    # ARNs embed the account: rewrite inside strings too (after exact replacements).
    for old, new in list(mapping.items()):
        if old.isdigit() and len(old) == 12:
            d = json.loads(json.dumps(d).replace(f":{old}:", f":{new}:"))
    d["recipientAccountId"] = account
    d["awsRegion"] = region
    if event_id is not None:
        d["eventID"] = event_id
    elif not d.get("eventID") or d.get("eventID") == "...":
        d["eventID"] = str(uuid.uuid4())
    return d


def _account_ids(record: Mapping[str, Any], d: Mapping[str, Any]) -> list[str]:
    """The account ids a record names: recipient, envelope, caller (any key spelling)."""
    out = [str(v) for v in (d.get("recipientAccountId"), record.get("account")) if v]
    identity = d.get("userIdentity")
    if isinstance(identity, Mapping):
        out += [str(identity[k]) for k in ("accountId", "accountid") if k in identity]
    return out


def _record_group_id(d: Mapping[str, Any]) -> str | None:
    req = d.get("requestParameters") or {}
    resp = d.get("responseElements") or {}
    return req.get("groupId") or resp.get("groupId")


def envelope(d: Mapping[str, Any]) -> dict[str, Any]:
    """The EventBridge envelope live events arrive in."""
    from perimeter.core.events import wrap_in_envelope

    return wrap_in_envelope(d)


@dataclass
class ReplayedRecord:
    event: dict[str, Any]
    group_id: str
    rule_ids: dict[str, str] = field(default_factory=dict)
    #: the rules created for the record, in API ``IpPermissions`` form, by direction
    ingress: list[dict[str, Any]] = field(default_factory=list)
    egress: list[dict[str, Any]] = field(default_factory=list)


def replay_sg_record(
    ec2: Any,
    record: Mapping[str, Any],
    *,
    vpc_id: str,
    tags: Mapping[str, str] | None = None,
    group_name: str | None = None,
    event_id: str | None = None,
) -> ReplayedRecord:
    """Make a security-group record true in moto, then return it retargeted (see module doc).

    AuthorizeSecurityGroupIngress/Egress: a new group gets exactly the rules the record adds
    (created with the API, so they have real rule ids; the record's own rule ids are mapped to
    them). CreateSecurityGroup: the group is created (with ``tags``) and the record points at it.
    """
    from botocore.exceptions import ClientError
    from perimeter.core.events import parse_event
    from perimeter.security_groups.changes import extract_group_changes

    d = detail(record)
    name = group_name or f"replay-{uuid.uuid4().hex[:8]}"
    spec: dict[str, Any] = {"GroupName": name, "Description": "corpus replay", "VpcId": vpc_id}
    if tags:
        spec["TagSpecifications"] = [
            {"ResourceType": "security-group", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    group_id = ec2.create_security_group(**spec)["GroupId"]
    replayed = ReplayedRecord(event={}, group_id=group_id)
    if d["eventName"] in ("AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress"):
        egress = d["eventName"] == "AuthorizeSecurityGroupEgress"
        # The record's own parse gives the rules it added, in AWS's API form.
        call = parse_event({**d, "awsRegion": REGION, "recipientAccountId": MOTO_ACCOUNT})
        rules = [r for change in extract_group_changes(call) for r in change.rules]
        for rule in rules:
            perm = rule.to_permission()
            authorize = (
                ec2.authorize_security_group_egress if egress else ec2.authorize_security_group_ingress
            )
            try:
                resp = authorize(GroupId=group_id, IpPermissions=[perm])
            except ClientError as exc:
                # A new group already holds AWS's default egress rule (all traffic to 0.0.0.0/0).
                if exc.response["Error"]["Code"] != "InvalidPermission.Duplicate":
                    raise
                resp = {}
            created = resp.get("SecurityGroupRules", [])
            (replayed.egress if egress else replayed.ingress).append(perm)
            if rule.rule_id and created:
                replayed.rule_ids[rule.rule_id] = created[0]["SecurityGroupRuleId"]
    d = retarget(d, group_id=group_id, rule_ids=replayed.rule_ids, event_id=event_id)
    if d["eventName"] == "CreateSecurityGroup":
        d.setdefault("responseElements", {})["groupId"] = group_id
        d.setdefault("requestParameters", {})["vpcId"] = vpc_id
    replayed.event = envelope(d)
    return replayed
