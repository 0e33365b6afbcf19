"""Unit tests for perimeter_local.patterns (EventBridge event-pattern matching)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from perimeter_local.patterns import PatternError, matches, validate

EVENT: dict[str, Any] = {
    "version": "0",
    "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "AWS API Call via CloudTrail",
    "source": "aws.s3",
    "account": "123456789012",
    "time": "2017-10-02T18:43:48Z",
    "region": "us-east-1",
    "resources": ["arn:aws:s3:::bucket-a", "arn:aws:s3:::bucket-b"],
    "detail": {
        "eventSource": "s3.amazonaws.com",
        "eventName": "PutBucketPolicy",
        "sourceIPAddress": "10.0.0.33",
        "ipv6": "2001:db8::7",
        "count": 5,
        "ratio": 0.25,
        "enabled": True,
        "nothing": None,
        "empty": "",
        "numericString": "5",
        "file": "path/to/lib/thing.PNG",
        "literal": "a*b",
        "tags": ["prod", "pci"],
        "emptyList": [],
        "user": {"type": "IAMUser", "name": "alice"},
        "items": [
            {"name": "x", "size": 1},
            {"name": "y", "size": 2, "kind": "big", "tier": "gold"},
        ],
    },
}


def d(**detail: Any) -> dict[str, Any]:
    """A pattern on ``detail`` only."""
    return {"detail": detail}


# (id, pattern, expected match against EVENT)
CASES: list[tuple[str, dict[str, Any], bool]] = [
    # exact values; a list is OR; fields are AND
    ("exact-string", {"source": ["aws.s3"]}, True),
    ("exact-string-miss", {"source": ["aws.ec2"]}, False),
    ("exact-is-case-sensitive", {"source": ["AWS.S3"]}, False),
    ("list-is-or", {"source": ["aws.ec2", "aws.s3"]}, True),
    ("fields-are-and", {"source": ["aws.s3"], "region": ["eu-west-1"]}, False),
    ("exact-number", d(count=[5]), True),
    ("exact-number-float-equal", d(count=[5.0]), True),
    ("exact-number-miss", d(count=[6]), False),
    ("number-not-string", d(numericString=[5]), False),
    ("string-not-number", d(count=["5"]), False),
    ("exact-bool", d(enabled=[True]), True),
    ("bool-not-number", d(enabled=[1]), False),
    ("exact-null", d(nothing=[None]), True),
    ("null-not-empty-string", d(empty=[None]), False),
    ("exact-empty-string", d(empty=[""]), True),
    ("missing-field-never-matches-value", d(absent=["x"]), False),
    ("missing-parent-never-matches", {"nope": {"x": ["y"]}}, False),
    # nesting
    ("nested", d(user={"type": ["IAMUser"], "name": ["alice"]}), True),
    ("nested-miss", d(user={"type": ["Root"]}), False),
    ("object-is-not-a-leaf", d(user=["IAMUser"]), False),
    # arrays in the event: any element
    ("array-any-element", {"resources": ["arn:aws:s3:::bucket-b"]}, True),
    ("array-no-element", {"resources": ["arn:aws:s3:::bucket-c"]}, False),
    ("array-prefix", d(tags=[{"prefix": "pc"}]), True),
    ("array-of-objects", d(items={"name": ["y"]}), True),
    ("array-of-objects-same-element", d(items={"name": ["y"], "size": [2]}), True),
    ("array-of-objects-cross-element", d(items={"name": ["x"], "size": [2]}), False),
    ("empty-array-has-no-values", d(emptyList=[{"anything-but": "x"}]), False),
    # prefix / suffix / equals-ignore-case / wildcard
    ("prefix", d(eventName=[{"prefix": "PutBucket"}]), True),
    ("prefix-miss", d(eventName=[{"prefix": "Delete"}]), False),
    ("prefix-empty-matches-any-string", d(eventName=[{"prefix": ""}]), True),
    ("prefix-not-on-numbers", d(count=[{"prefix": "5"}]), False),
    (
        "prefix-ignore-case",
        d(eventName=[{"prefix": {"equals-ignore-case": "putb"}}]),
        True,
    ),
    (
        "prefix-ignore-case-miss",
        d(eventName=[{"prefix": {"equals-ignore-case": "get"}}]),
        False,
    ),
    ("suffix", d(file=[{"suffix": ".PNG"}]), True),
    ("suffix-case-sensitive", d(file=[{"suffix": ".png"}]), False),
    ("suffix-ignore-case", d(file=[{"suffix": {"equals-ignore-case": ".png"}}]), True),
    ("equals-ignore-case", {"source": [{"equals-ignore-case": "AWS.S3"}]}, True),
    ("equals-ignore-case-miss", {"source": [{"equals-ignore-case": "aws.s"}]}, False),
    ("wildcard", d(file=[{"wildcard": "*/lib/*"}]), True),
    ("wildcard-anchored", d(file=[{"wildcard": "lib/*"}]), False),
    ("wildcard-middle", d(eventName=[{"wildcard": "Put*Policy"}]), True),
    ("wildcard-escaped-star", d(literal=[{"wildcard": "a\\*b"}]), True),
    ("wildcard-escaped-star-is-literal", d(eventName=[{"wildcard": "Put\\*"}]), False),
    ("wildcard-not-on-numbers", d(count=[{"wildcard": "*"}]), False),
    # anything-but
    ("anything-but-string", d(eventName=[{"anything-but": "DeleteBucket"}]), True),
    (
        "anything-but-string-miss",
        d(eventName=[{"anything-but": "PutBucketPolicy"}]),
        False,
    ),
    (
        "anything-but-list",
        d(eventName=[{"anything-but": ["A", "PutBucketPolicy"]}]),
        False,
    ),
    ("anything-but-number", d(count=[{"anything-but": 6}]), True),
    ("anything-but-number-miss", d(count=[{"anything-but": [4, 5.0]}]), False),
    ("anything-but-number-vs-string", d(numericString=[{"anything-but": 5}]), True),
    ("anything-but-missing-field", d(absent=[{"anything-but": "x"}]), False),
    ("anything-but-array-any-element", d(tags=[{"anything-but": "prod"}]), True),
    (
        "anything-but-array-all-excluded",
        d(tags=[{"anything-but": ["prod", "pci"]}]),
        False,
    ),
    ("anything-but-prefix", d(eventName=[{"anything-but": {"prefix": "Get"}}]), True),
    (
        "anything-but-prefix-miss",
        d(eventName=[{"anything-but": {"prefix": "Put"}}]),
        False,
    ),
    ("anything-but-suffix", d(file=[{"anything-but": {"suffix": ".PNG"}}]), False),
    (
        "anything-but-ignore-case",
        d(eventName=[{"anything-but": {"equals-ignore-case": "putbucketpolicy"}}]),
        False,
    ),
    (
        "anything-but-ignore-case-list",
        d(eventName=[{"anything-but": {"equals-ignore-case": ["a", "b"]}}]),
        True,
    ),
    (
        "anything-but-wildcard",
        d(file=[{"anything-but": {"wildcard": "*/lib/*"}}]),
        False,
    ),
    (
        "anything-but-wildcard-other",
        d(file=[{"anything-but": {"wildcard": "*/bin/*"}}]),
        True,
    ),
    # numeric
    ("numeric-eq", d(count=[{"numeric": ["=", 5]}]), True),
    ("numeric-eq-miss", d(count=[{"numeric": ["=", 5.5]}]), False),
    ("numeric-lt", d(count=[{"numeric": ["<", 6]}]), True),
    ("numeric-lt-boundary", d(count=[{"numeric": ["<", 5]}]), False),
    ("numeric-le-boundary", d(count=[{"numeric": ["<=", 5]}]), True),
    ("numeric-gt", d(ratio=[{"numeric": [">", 0]}]), True),
    ("numeric-ge-miss", d(ratio=[{"numeric": [">=", 0.3]}]), False),
    ("numeric-range", d(count=[{"numeric": [">", 0, "<=", 5]}]), True),
    ("numeric-range-open-top", d(count=[{"numeric": [">", 0, "<", 5]}]), False),
    ("numeric-not-on-strings", d(numericString=[{"numeric": ["=", 5]}]), False),
    ("numeric-not-on-bools", d(enabled=[{"numeric": ["=", 1]}]), False),
    ("numeric-array-of-objects", d(items={"size": [{"numeric": [">", 1]}]}), True),
    # exists
    ("exists-true", d(eventName=[{"exists": True}]), True),
    ("exists-true-missing", d(errorCode=[{"exists": True}]), False),
    ("exists-false-missing", d(errorCode=[{"exists": False}]), True),
    ("exists-false-present", d(eventName=[{"exists": False}]), False),
    ("exists-true-null-is-present", d(nothing=[{"exists": True}]), True),
    ("exists-true-object-is-not-leaf", d(user=[{"exists": True}]), False),
    ("exists-false-object-is-not-leaf", d(user=[{"exists": False}]), True),
    ("exists-true-empty-array", d(emptyList=[{"exists": True}]), False),
    ("exists-or-value", d(errorCode=["AccessDenied", {"exists": False}]), True),
    ("exists-array-of-objects", d(items={"kind": [{"exists": True}]}), True),
    # exists:false inside arrays of objects: the field must be absent from the
    # element already chosen by the fields whose dotted names sort before it
    # (event-ruler examines a rule's fields in sorted order)
    ("exists-false-array-any", d(items={"tier": [{"exists": False}]}), False),
    (
        "exists-false-chosen-element",
        d(items={"name": ["x"], "tier": [{"exists": False}]}),
        True,
    ),
    (
        "exists-false-chosen-element-has-it",
        d(items={"name": ["y"], "tier": [{"exists": False}]}),
        False,
    ),
    (
        "exists-false-same-element-field",
        d(items={"name": ["x"], "size": [{"exists": False}]}),
        False,
    ),
    (
        "exists-false-sorted-before-choice",
        d(items={"name": ["x"], "kind": [{"exists": False}]}),
        False,
    ),
    # cidr
    ("cidr-v4", d(sourceIPAddress=[{"cidr": "10.0.0.0/24"}]), True),
    ("cidr-v4-miss", d(sourceIPAddress=[{"cidr": "10.0.1.0/24"}]), False),
    ("cidr-v6", d(ipv6=[{"cidr": "2001:db8::/32"}]), True),
    ("cidr-v6-miss", d(ipv6=[{"cidr": "2001:db9::/32"}]), False),
    ("cidr-version-mismatch", d(sourceIPAddress=[{"cidr": "::/0"}]), False),
    ("cidr-not-an-ip", d(eventName=[{"cidr": "0.0.0.0/0"}]), False),
    # $or
    ("or-top", {"$or": [{"source": ["aws.ec2"]}, {"region": ["us-east-1"]}]}, True),
    (
        "or-top-none",
        {"$or": [{"source": ["aws.ec2"]}, {"region": ["eu-west-1"]}]},
        False,
    ),
    (
        "or-nested",
        d(**{"$or": [{"eventName": ["X"]}, {"count": [{"numeric": [">", 4]}]}]}),
        True,
    ),
    (
        "or-and-outer",
        {"source": ["aws.ec2"], "$or": [{"region": ["us-east-1"]}, {"id": ["x"]}]},
        False,
    ),
    (
        "or-inside-or",
        {
            "$or": [
                {"source": ["nope"]},
                {
                    "$or": [
                        {"region": ["nope"]},
                        {"detail": {"user": {"name": ["alice"]}}},
                    ]
                },
            ]
        },
        True,
    ),
    (
        "or-multi-level",
        {
            "$or": [
                {"detail": {"count": [9]}},
                {"detail": {"user": {"type": ["IAMUser"]}}},
            ]
        },
        True,
    ),
]


@pytest.mark.parametrize(("pattern", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_matches(pattern: dict[str, Any], expected: bool) -> None:
    assert matches(pattern, EVENT) is expected


def test_case_table_has_both_outcomes() -> None:
    outcomes = [c[2] for c in CASES]
    assert outcomes.count(True) > 10 and outcomes.count(False) > 10


def test_nested_arrays_are_crushed() -> None:
    event = {"a": [[{"b": 1}], [{"b": 2}, {"b": 3, "c": 4}]]}
    assert matches({"a": {"b": [3], "c": [4]}}, event)
    assert not matches({"a": {"b": [2], "c": [4]}}, event)


def test_separate_arrays_are_independent() -> None:
    event = {"a": [{"x": 1}, {"x": 2}], "b": [{"y": 1}, {"y": 2}]}
    assert matches({"a": {"x": [2]}, "b": {"y": [1]}}, event)


def test_event_is_not_modified() -> None:
    event = {"detail": {"items": [{"name": "x"}]}}
    matches({"detail": {"items": {"name": ["x"]}}}, event)
    assert event == {"detail": {"items": [{"name": "x"}]}}


# (id, pattern, path the message must start with)
BAD: list[tuple[str, Any, str]] = [
    ("not-a-dict", ["source"], "<pattern>: expected an object"),
    ("empty-pattern", {}, "<pattern>: empty"),
    (
        "leaf-str",
        {"detail": {"eventName": "x"}},
        "detail.eventName: expected a list of values or operators, got str",
    ),
    ("leaf-number", {"count": 5}, "count: expected a list"),
    ("leaf-null", {"x": None}, "x: expected a list"),
    ("empty-list", {"source": []}, "source: empty"),
    ("empty-object", {"detail": {}}, "detail: empty"),
    ("nested-list", {"source": [["a"]]}, "source[0]: expected a string, number"),
    (
        "unknown-operator",
        {"detail": {"x": ["a", {"contains": "b"}]}},
        "detail.x[1]: unknown operator 'contains'",
    ),
    (
        "two-keys",
        {"x": [{"prefix": "a", "suffix": "b"}]},
        "x[0]: an operator object must have exactly one key",
    ),
    ("prefix-number", {"x": [{"prefix": 1}]}, "x[0].prefix: expected a string"),
    (
        "prefix-bad-object",
        {"x": [{"prefix": {"wildcard": "a"}}]},
        "x[0].prefix: expected a string or",
    ),
    (
        "suffix-ignore-case-number",
        {"x": [{"suffix": {"equals-ignore-case": 1}}]},
        "x[0].suffix.equals-ignore-case:",
    ),
    (
        "equals-ignore-case-list",
        {"x": [{"equals-ignore-case": ["a"]}]},
        "x[0].equals-ignore-case: expected a string",
    ),
    (
        "wildcard-double-star",
        {"x": [{"wildcard": "a**b"}]},
        "x[0].wildcard: consecutive",
    ),
    (
        "wildcard-bad-escape",
        {"x": [{"wildcard": "a\\b"}]},
        "x[0].wildcard: a backslash",
    ),
    (
        "wildcard-trailing-backslash",
        {"x": [{"wildcard": "a\\"}]},
        "x[0].wildcard: a backslash",
    ),
    (
        "exists-not-bool",
        {"x": [{"exists": "yes"}]},
        "x[0].exists: expected true or false",
    ),
    (
        "numeric-not-list",
        {"x": [{"numeric": 5}]},
        "x[0].numeric: expected [operator, number]",
    ),
    (
        "numeric-odd-length",
        {"x": [{"numeric": [">", 1, "<"]}]},
        "x[0].numeric: expected",
    ),
    (
        "numeric-bad-op",
        {"x": [{"numeric": ["!=", 1]}]},
        "x[0].numeric: unknown numeric operator '!='",
    ),
    (
        "numeric-string-bound",
        {"x": [{"numeric": [">", "1"]}]},
        "x[0].numeric: the value after '>'",
    ),
    (
        "numeric-bool-bound",
        {"x": [{"numeric": [">", True]}]},
        "x[0].numeric: the value after '>'",
    ),
    (
        "numeric-range-order",
        {"x": [{"numeric": ["<", 1, ">", 0]}]},
        "x[0].numeric: a range",
    ),
    (
        "numeric-range-empty",
        {"x": [{"numeric": [">", 5, "<", 5]}]},
        "x[0].numeric: a range",
    ),
    (
        "numeric-eq-range",
        {"x": [{"numeric": ["=", 1, "<", 5]}]},
        "x[0].numeric: a range",
    ),
    (
        "cidr-invalid",
        {"d": {"ip": [{"cidr": "10.0.0.300/8"}]}},
        "d.ip[0].cidr: invalid CIDR block",
    ),
    ("cidr-number", {"ip": [{"cidr": 10}]}, "ip[0].cidr: expected a string"),
    (
        "anything-but-bool",
        {"x": [{"anything-but": True}]},
        "x[0].anything-but: expected a string, a number",
    ),
    (
        "anything-but-mixed",
        {"x": [{"anything-but": ["a", 1]}]},
        "x[0].anything-but: expected",
    ),
    (
        "anything-but-empty",
        {"x": [{"anything-but": []}]},
        "x[0].anything-but: expected",
    ),
    (
        "anything-but-numeric",
        {"x": [{"anything-but": {"numeric": [">", 1]}}]},
        "x[0].anything-but.numeric: not supported",
    ),
    (
        "anything-but-empty-prefix",
        {"x": [{"anything-but": {"prefix": ""}}]},
        "x[0].anything-but.prefix: an empty prefix",
    ),
    (
        "anything-but-two-ops",
        {"x": [{"anything-but": {"prefix": "a", "suffix": "b"}}]},
        "x[0].anything-but: expected exactly one",
    ),
    (
        "anything-but-bad-wildcard",
        {"x": [{"anything-but": {"wildcard": "**"}}]},
        "x[0].anything-but.wildcard: consecutive",
    ),
    (
        "or-not-list",
        {"$or": {"a": ["b"]}},
        "$or: expected a list of at least two objects",
    ),
    ("or-one-branch", {"$or": [{"a": ["b"]}]}, "$or: expected a list of at least two"),
    (
        "or-branch-not-dict",
        {"detail": {"$or": [{"a": ["b"]}, ["c"]]}},
        "detail.$or[1]: expected an object, got list",
    ),
    (
        "or-branch-bad-leaf",
        {"$or": [{"a": ["b"]}, {"c": {"d": "e"}}]},
        "$or[1].c.d: expected a list",
    ),
    (
        "or-operator-as-field",
        {"$or": [{"prefix": ["b"]}, {"c": ["d"]}]},
        "$or[0].prefix: 'prefix' is an operator",
    ),
    ("nan", {"x": [float("nan")]}, "x[0]: numbers must be finite"),
]


@pytest.mark.parametrize(("pattern", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_invalid_patterns(pattern: Any, message: str) -> None:
    with pytest.raises(PatternError) as excinfo:
        validate(pattern)
    assert str(excinfo.value).startswith(message)
    # matches() validates too, whatever the event
    with pytest.raises(PatternError):
        matches(pattern, EVENT)


def test_pattern_error_is_a_value_error() -> None:
    assert issubclass(PatternError, ValueError)


def test_valid_patterns_pass_validation() -> None:
    for _, pattern, _ in CASES:
        validate(pattern)


# --- properties --------------------------------------------------------------

keys = st.sampled_from(["a", "b", "detail", "x.y", "$x", "-", "Ünï"])
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
# events whose leaves are scalars or arrays of scalars, nested in objects
events = st.recursive(
    st.dictionaries(keys, st.one_of(scalars, st.lists(scalars, min_size=1, max_size=3)), max_size=4),
    lambda children: st.dictionaries(keys, children, min_size=1, max_size=3),
    max_leaves=8,
)


def pattern_from_leaves(event: dict[str, Any]) -> dict[str, Any]:
    """A pattern demanding each scalar leaf of ``event`` (arrays: one element)."""
    pattern: dict[str, Any] = {}
    for key, value in event.items():
        if isinstance(value, dict):
            nested = pattern_from_leaves(value)
            if nested:
                pattern[key] = nested
        elif isinstance(value, list):
            pattern[key] = [value[-1]]
        else:
            pattern[key] = [value]
    return pattern


@given(events)
def test_pattern_of_own_leaves_matches(event: dict[str, Any]) -> None:
    pattern = pattern_from_leaves(event)
    if pattern:
        assert matches(pattern, event)


@given(events)
def test_exists_true_and_false_are_complementary(event: dict[str, Any]) -> None:
    for key in event:
        present = matches({key: [{"exists": True}]}, event)
        absent = matches({key: [{"exists": False}]}, event)
        assert present != absent
    assert matches({"never-a-key-here": [{"exists": False}]}, event)


plain = st.one_of(
    st.text(max_size=8),
    st.integers(min_value=-(10**9), max_value=10**9),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9),
)


@given(plain, plain)
def test_anything_but_never_matches_its_value(value: Any, other: Any) -> None:
    assert not matches({"f": [{"anything-but": value}]}, {"f": value})
    assert not matches({"f": [{"anything-but": [value]}]}, {"f": value})
    same = isinstance(value, str) == isinstance(other, str) and value == other
    assert matches({"f": [{"anything-but": value}]}, {"f": other}) is not same


@given(plain)
def test_exact_value_matches_itself_only(value: Any) -> None:
    assert matches({"f": [value]}, {"f": value})
    assert not matches({"f": [value]}, {"g": value})
    assert not matches({"f": [value]}, {"f": [str(value) + "x"]})
