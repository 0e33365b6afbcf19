"""Policy validation: ``parse_policy`` and ``policy/schema.json`` accept the shipped policy and
reject the same bad documents, each with the path of the bad field first; exemptions match and
expire as documented; dry-run turns enforce into detect."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from perimeter import policy as policy_module
from perimeter.policy import (
    CONTROL_IDS,
    MODES,
    TOP_LEVEL,
    PolicyError,
    default_policy_text,
    load_default_policy,
    load_policy_text,
    parse_policy,
)

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "policy" / "schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())


def default_doc() -> dict[str, Any]:
    return yaml.safe_load(default_policy_text())


def as_json(doc: Any) -> Any:
    """What a YAML document looks like to a JSON Schema validator (dates become ISO strings)."""
    return json.loads(json.dumps(doc, default=lambda o: o.isoformat()))


def schema_errors(doc: Any) -> list[str]:
    return [e.message for e in VALIDATOR.iter_errors(as_json(doc))]


def with_(path: str, value: Any) -> dict[str, Any]:
    """The default document with one field set (``a.b[0].c`` paths); ``...`` deletes it."""
    doc = copy.deepcopy(default_doc())
    parts = path.replace("[", ".[").split(".")
    node: Any = doc
    for part in parts[:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node.setdefault(part, {})
    last = parts[-1]
    key: Any = int(last[1:-1]) if last.startswith("[") else last
    if value is ...:
        del node[key]
    else:
        node[key] = value
    return doc


def test_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_default_policy_validates_with_schema_and_parser() -> None:
    doc = default_doc()
    assert schema_errors(doc) == []
    policy = parse_policy(doc)
    assert policy.mode("PER-SG-1") == "enforce"
    assert policy.mode("PER-SG-4") == "detect"
    assert load_default_policy() == policy


def test_schema_lists_exactly_the_parser_fields() -> None:
    """The schema and parse_policy describe the same document: same top-level fields,
    control ids and modes (re-checked whenever a helper adds a field or a control)."""
    assert set(SCHEMA["properties"]) == set(TOP_LEVEL)
    assert SCHEMA["additionalProperties"] is False
    assert SCHEMA["$defs"]["controlId"]["enum"] == list(CONTROL_IDS)
    assert SCHEMA["$defs"]["mode"]["enum"] == list(MODES)
    assert set(default_doc()) <= set(TOP_LEVEL)
    retention = getattr(policy_module, "LOG_RETENTION_DAYS", None)
    if retention is not None:
        assert SCHEMA["properties"]["flow_logs"]["properties"]["retention_days"]["enum"] == list(retention)
    for cid in default_doc()["controls"]:
        assert cid in CONTROL_IDS


FUTURE = dt.date(2999, 1, 1)
EX = {"security_group": "sg-1", "reason": "ticket SEC-1", "expires": FUTURE}

# (id, document, expected start of the PolicyError message, schema can express it)
BAD: list[tuple[str, Any, str, bool]] = [
    ("not-a-mapping", ["version", 1], "policy: must be a mapping", True),
    ("version-missing", with_("version", ...), "version: must be 1", True),
    ("version-2", with_("version", 2), "version: must be 1", True),
    ("version-string", with_("version", "1"), "version: must be 1", True),
    ("version-true", with_("version", True), "version: must be 1", True),
    ("unknown-top-field", with_("enforce_everything", True), "enforce_everything: unknown field", True),
    ("dry-run-string", with_("dry_run", "yes"), "dry_run: must be true or false", True),
    (
        "wrong-mode",
        with_("controls.PER-SG-1", {"mode": "block"}),
        "controls.PER-SG-1.mode: must be one of",
        True,
    ),
    ("mode-missing", with_("controls.PER-SG-1", {}), "controls.PER-SG-1.mode: must be one of", True),
    (
        "unknown-control",
        with_("controls.PER-SG-9", {"mode": "detect"}),
        "controls.PER-SG-9: unknown control",
        True,
    ),
    (
        "unknown-control-field",
        with_("controls.PER-SG-1", {"mode": "detect", "severity": "high"}),
        "controls.PER-SG-1.severity: unknown field",
        True,
    ),
    (
        "port-out-of-range",
        with_("public_ports[0].ports", 70000),
        "public_ports[0].ports: port range out of bounds",
        True,
    ),
    (
        "port-text-out-of-range",
        with_("public_ports[0].ports", "70000"),
        "public_ports[0].ports: port range out of bounds",
        False,
    ),
    (
        "port-range-reversed",
        with_("high_risk_ports[0].ports", "23-20"),
        "high_risk_ports[0].ports: port range out of bounds",
        False,
    ),
    (
        "port-not-a-number",
        with_("high_risk_ports[1].ports", "ssh"),
        "high_risk_ports[1].ports: not a port",
        True,
    ),
    (
        "port-missing",
        with_("public_ports[0]", {"protocol": "tcp"}),
        "public_ports[0].ports: not a port",
        True,
    ),
    (
        "port-protocol-icmp",
        with_("public_ports[1].protocol", "icmp"),
        "public_ports[1].protocol: must be tcp or udp",
        True,
    ),
    (
        "port-spec-unknown-field",
        with_("public_ports[0].cidr", "0.0.0.0/0"),
        "public_ports[0].cidr: unknown field",
        True,
    ),
    ("public-ports-not-list", with_("public_ports", "80,443"), "public_ports: must be a list", True),
    ("trusted-world", with_("trusted_cidrs", ["0.0.0.0/0"]), "trusted_cidrs[0]: the whole internet", True),
    (
        "trusted-world-host-bits",
        with_("trusted_cidrs", ["10.1.2.3/0"]),
        "trusted_cidrs[0]: the whole internet",
        True,
    ),
    (
        "trusted-world-v6",
        with_("trusted_cidrs", ["10.0.0.0/8", "::/0"]),
        "trusted_cidrs[1]: the whole internet",
        True,
    ),
    ("trusted-not-cidr", with_("trusted_cidrs", ["office"]), "trusted_cidrs[0]: not a CIDR", True),
    ("trusted-bad-octet", with_("trusted_cidrs", ["10.0.0.300/24"]), "trusted_cidrs[0]: not a CIDR", False),
    ("tiers-missing", with_("tiers", ...), "tiers: is required", True),
    ("tiers-no-model", with_("tiers.values", {"app": ["app"]}), "tiers.values.model: is required", True),
    ("tiers-tag-key-empty", with_("tiers.tag_key", " "), "tiers.tag_key: must be a non-empty string", True),
    (
        "tiers-values-not-list",
        with_("tiers.values.model", "model"),
        "tiers.values.model: must be a list",
        True,
    ),
    (
        "exemption-no-expires",
        with_("exemptions", [{"security_group": "sg-1", "reason": "x"}]),
        "exemptions[0].expires: is required",
        True,
    ),
    (
        "exemption-no-reason",
        with_("exemptions", [{"security_group": "sg-1", "expires": FUTURE}]),
        "exemptions[0].reason: must be a non-empty string",
        True,
    ),
    (
        "exemption-no-selector",
        with_("exemptions", [{"reason": "x", "expires": FUTURE}]),
        "exemptions[0]: needs one of",
        True,
    ),
    (
        "exemption-bad-date",
        with_("exemptions", [{**EX, "expires": "31/12/2027"}]),
        "exemptions[0].expires: must be a date",
        True,
    ),
    (
        "exemption-impossible-date",
        with_("exemptions", [{**EX, "expires": "2027-02-30"}]),
        "exemptions[0].expires: must be a date",
        True,
    ),
    (
        "exemption-unknown-control",
        with_("exemptions", [EX, {**EX, "controls": ["SG-1"]}]),
        "exemptions[1].controls: unknown control",
        True,
    ),
    (
        "exemption-unknown-field",
        with_("exemptions", [{**EX, "owner": "me"}]),
        "exemptions[0].owner: unknown field",
        True,
    ),
    (
        "exemption-tag-no-key",
        with_("exemptions", [{"tag": {"value": "x"}, "reason": "x", "expires": FUTURE}]),
        "exemptions[0].tag.key: must be a non-empty string",
        True,
    ),
    (
        "severity-out-of-order",
        with_("thresholds.severity", {"critical": 60, "high": 70, "medium": 40, "low": 1}),
        "thresholds.severity: must satisfy critical >= high",
        False,
    ),
    (
        "severity-over-100",
        with_("thresholds.severity.critical", 101),
        "thresholds.severity.critical: must be an integer 0-100",
        True,
    ),
    (
        "severity-unknown-label",
        with_("thresholds.severity.urgent", 95),
        "thresholds.severity.urgent: unknown field",
        True,
    ),
    (
        "enforce-min-score-string",
        with_("thresholds.enforce_min_score", "50"),
        "thresholds.enforce_min_score: must be an integer",
        True,
    ),
    (
        "enforce-min-score-bool",
        with_("thresholds.enforce_min_score", True),
        "thresholds.enforce_min_score: must be an integer",
        True,
    ),
    (
        "flow-logs-destination",
        with_("flow_logs.destination", "kinesis"),
        "flow_logs.destination: must be",
        True,
    ),
    (
        "flow-logs-retention",
        with_("flow_logs.retention_days", 42),
        "flow_logs.retention_days: must be one of",
        True,
    ),
    (
        "flow-logs-s3-no-bucket",
        with_("flow_logs", {"destination": "s3"}),
        "flow_logs.s3_bucket_arn: is required",
        True,
    ),
    (
        "flow-logs-bucket-not-arn",
        with_("flow_logs", {"destination": "s3", "s3_bucket_arn": "my-bucket"}),
        "flow_logs.s3_bucket_arn: must be an S3 bucket ARN",
        True,
    ),
    (
        "guardrails-kind",
        with_("guardrails.required_for", ["openai"]),
        "guardrails.required_for[0]: must be",
        True,
    ),
    (
        "world-prefix-v4-33",
        with_("thresholds.world_max_prefix.ipv4", 33),
        "thresholds.world_max_prefix.ipv4: must be an integer 0-32",
        True,
    ),
    (
        "world-prefix-v6-129",
        with_("thresholds.world_max_prefix.ipv6", 129),
        "thresholds.world_max_prefix.ipv6: must be an integer 0-128",
        True,
    ),
]


@pytest.mark.parametrize(("doc", "prefix", "schema_can"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_policy_rejected(doc: Any, prefix: str, schema_can: bool) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(doc)
    assert str(info.value).startswith(prefix), str(info.value)
    errors = schema_errors(doc)
    if schema_can:
        assert errors, "schema.json accepted a policy parse_policy rejects"
    else:
        # Documented limits of the schema (order, bounds across fields): parse_policy alone.
        assert errors == []


def test_yaml_syntax_error_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match=r"^policy: not valid YAML"):
        load_policy_text("version: 1\ncontrols: [unclosed\n")


def test_null_exemptions_mean_none() -> None:
    doc = with_("exemptions", None)
    assert schema_errors(doc) == []
    assert parse_policy(doc).exemptions == ()


def test_protocol_spellings_normalised() -> None:
    doc = with_("public_ports", [{"protocol": "TCP", "ports": 443}, {"protocol": "17", "ports": "53"}])
    assert schema_errors(doc) == []
    specs = parse_policy(doc).public_ports
    assert [(s.protocol, s.ports.low, s.ports.high) for s in specs] == [("tcp", 443, 443), ("udp", 53, 53)]


# --- exemptions -------------------------------------------------------------------------

TODAY = dt.date(2026, 6, 1)


def policy_with(*exemptions: dict[str, Any]) -> Any:
    doc = with_("exemptions", list(exemptions))
    assert schema_errors(doc) == []
    return parse_policy(doc)


def test_exemption_by_group_applies_until_its_expiry_day_inclusive() -> None:
    p = policy_with({"security_group": "sg-1", "reason": "sftp", "expires": "2026-06-01"})
    assert p.exemption_for("PER-SG-1", group_id="sg-1", today=TODAY) is not None
    assert p.exemption_for("PER-SG-1", group_id="sg-1", today=TODAY + dt.timedelta(days=1)) is None
    assert p.exemption_for("PER-SG-1", group_id="sg-2", today=TODAY) is None


def test_exemption_yaml_date_and_label() -> None:
    p = load_policy_text(
        default_policy_text().replace(
            "exemptions: []",
            "exemptions:\n  - {vpc: vpc-1, reason: lab VPC, expires: 2026-12-31}",
        )
    )
    ex = p.exemption_for("PER-SG-3", vpc_id="vpc-1", today=TODAY)
    assert ex is not None and ex.expires == dt.date(2026, 12, 31)
    assert ex.label == "vpc-1 until 2026-12-31: lab VPC"
    assert p.exemption_for("PER-SG-3", vpc_id="vpc-2", today=TODAY) is None


@pytest.mark.parametrize(
    ("tag", "tags", "expected"),
    [
        ({"key": "team"}, {"team": "ml"}, True),
        ({"key": "team"}, {"owner": "ml"}, False),
        ({"key": "team", "value": "ml"}, {"team": "ml"}, True),
        ({"key": "team", "value": "ml"}, {"team": "web"}, False),
        ({"key": "team", "value": "ml"}, {}, False),
    ],
)
def test_exemption_by_tag(tag: dict[str, str], tags: dict[str, str], expected: bool) -> None:
    p = policy_with({"tag": tag, "reason": "r", "expires": FUTURE})
    assert (p.exemption_for("PER-SG-2", group_id="sg-9", tags=tags, today=TODAY) is not None) is expected


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        ("arn:aws:sts::111122223333:assumed-role/BreakGlass/alice", True),
        ("arn:aws:sts::444455556666:assumed-role/BreakGlass/bob", True),
        ("arn:aws:sts::111122223333:assumed-role/BreakGlassX/alice", False),
        ("arn:aws:iam::111122223333:user/BreakGlass", False),
        (None, False),
    ],
)
def test_exemption_by_principal_glob(arn: str | None, expected: bool) -> None:
    p = policy_with(
        {"principal": "arn:aws:sts::*:assumed-role/BreakGlass/*", "reason": "r", "expires": FUTURE}
    )
    assert (p.exemption_for("PER-SG-1", principal_arn=arn, today=TODAY) is not None) is expected


def test_exemption_controls_narrowing() -> None:
    p = policy_with({"security_group": "sg-1", "reason": "r", "expires": FUTURE, "controls": ["PER-SG-1"]})
    assert p.exemption_for("PER-SG-1", group_id="sg-1", today=TODAY) is not None
    assert p.exemption_for("PER-SG-2", group_id="sg-1", today=TODAY) is None


def test_exemption_selectors_all_must_match() -> None:
    p = policy_with({"security_group": "sg-1", "vpc": "vpc-1", "reason": "r", "expires": FUTURE})
    assert p.exemption_for("PER-SG-1", group_id="sg-1", vpc_id="vpc-1", today=TODAY) is not None
    assert p.exemption_for("PER-SG-1", group_id="sg-1", vpc_id="vpc-2", today=TODAY) is None


def test_first_live_exemption_wins_expired_skipped() -> None:
    p = policy_with(
        {"security_group": "sg-1", "reason": "old", "expires": "2020-01-01"},
        {"security_group": "sg-1", "reason": "new", "expires": FUTURE},
    )
    ex = p.exemption_for("PER-SG-1", group_id="sg-1", today=TODAY)
    assert ex is not None and ex.reason == "new"


# --- modes ------------------------------------------------------------------------------


def test_dry_run_turns_enforce_into_detect_only() -> None:
    p = parse_policy(with_("controls.PER-SG-3", {"mode": "off"}))
    dry = p.with_dry_run(True)
    assert [dry.mode(c) for c in ("PER-SG-1", "PER-SG-2", "PER-SG-3", "PER-SG-4")] == [
        "detect",
        "detect",
        "off",
        "detect",
    ]
    assert p.with_dry_run(False).mode("PER-SG-1") == "enforce"
    # the document's own dry_run cannot be switched off by the environment
    doc_dry = parse_policy(with_("dry_run", True))
    assert doc_dry.with_dry_run(False).mode("PER-SG-1") == "detect"


def test_unlisted_control_is_off() -> None:
    doc = with_("controls", {"PER-SG-1": {"mode": "enforce"}})
    assert parse_policy(doc).mode("PER-SG-2") == "off"
