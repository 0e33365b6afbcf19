"""The policy per OU and account (organization mode): ``overrides`` merged over the base.

A member account's policy is the base, then its OUs' overrides from the root down, then its own;
mappings merge key by key and any other value replaces the base's. Each override must make a
valid policy once merged, and a bad field is named by its full path. The schema says the same.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from perimeter.policy import PolicyError, merge_docs, parse_policy

from tests.unit.test_policy import default_doc, schema_errors

A, B = "111122223333", "444455556666"
OU_TOP, OU_ML = "ou-ab12-aaaaaaaa", "ou-ab12-bbbbbbbb"


def doc_with(overrides: Any) -> dict[str, Any]:
    doc = copy.deepcopy(default_doc())
    doc["overrides"] = overrides
    return doc


def test_without_overrides_nothing_changes() -> None:
    p = parse_policy(default_doc())
    assert not p.has_overrides
    assert p.for_account(A, (OU_TOP,)) is p


def test_ou_then_account_precedence_and_key_by_key_merge() -> None:
    p = parse_policy(
        doc_with(
            {
                "ous": {
                    OU_TOP: {"controls": {"PER-SG-1": {"mode": "detect"}, "PER-SG-4": {"mode": "enforce"}}},
                    OU_ML: {
                        "controls": {"PER-SG-1": {"mode": "off"}},
                        "thresholds": {"enforce_min_score": 70},
                    },
                },
                "accounts": {
                    A: {"controls": {"PER-SG-1": {"mode": "enforce"}}, "trusted_cidrs": ["10.9.0.0/16"]}
                },
            }
        )
    )
    assert p.has_overrides
    base = p.for_account(B)
    assert base is p  # an account no override names keeps the base
    top = p.for_account(B, (OU_TOP,))
    assert top.mode("PER-SG-1") == "detect" and top.mode("PER-SG-4") == "enforce"
    assert top.mode("PER-SG-2") == p.mode("PER-SG-2")  # key by key: the rest of controls stays
    ml = p.for_account(B, (OU_TOP, OU_ML))  # root first: the nearer OU wins
    assert ml.mode("PER-SG-1") == "off" and ml.mode("PER-SG-4") == "enforce"
    assert ml.thresholds.enforce_min_score == 70
    acct = p.for_account(A, (OU_TOP, OU_ML))  # the account's own override wins over its OUs
    assert acct.mode("PER-SG-1") == "enforce" and acct.thresholds.enforce_min_score == 70
    assert acct.trusted_cidrs == ("10.9.0.0/16",)  # a list replaces the base's
    assert p.for_account(A, (OU_TOP, OU_ML)) is acct  # cached per scope
    assert p.for_account(B, ("ou-ab12-notlisted",)) is p  # an OU without override is skipped


def test_dry_run_holds_for_every_account() -> None:
    p = parse_policy(
        doc_with({"accounts": {A: {"controls": {"PER-SG-4": {"mode": "enforce"}}}}})
    ).with_dry_run(True)
    assert p.for_account(A).mode("PER-SG-4") == "detect"
    assert p.for_account(A).mode("PER-SG-1") == "detect"


def test_merge_docs_is_deep_for_mappings_only() -> None:
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert merge_docs(base, {"a": {"c": [3]}, "e": 2}) == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}  # the base is not changed


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"accounts": {"1234": {}}}, "overrides.accounts.1234: must be a 12-digit account id"),
        ({"ous": {"r-abcd": {}}}, "overrides.ous.r-abcd: must be an organizational unit id"),
        ({"accounts": {A: {"version": 1}}}, f"overrides.accounts.{A}.version: cannot be overridden"),
        ({"accounts": {A: {"overrides": {}}}}, f"overrides.accounts.{A}.overrides: cannot be overridden"),
        (
            {"accounts": {A: {"thresholds": {"enforce_min_score": 500}}}},
            f"overrides.accounts.{A}.thresholds.enforce_min_score: must be an integer 0-100",
        ),
        (
            {"ous": {OU_ML: {"controls": {"PER-SG-1": {"mode": "block"}}}}},
            f"overrides.ous.{OU_ML}.controls.PER-SG-1.mode: must be one of",
        ),
        ({"teams": {}}, "overrides.teams"),
    ],
)
def test_a_bad_override_is_named_by_its_path(overrides: Any, message: str) -> None:
    doc = doc_with(overrides)
    with pytest.raises(PolicyError) as exc:
        parse_policy(doc)
    assert str(exc.value).startswith(message), str(exc.value)
    assert schema_errors(doc), "the schema must refuse it too"


def test_the_schema_accepts_what_the_parser_accepts() -> None:
    doc = doc_with(
        {
            "ous": {OU_ML: {"controls": {"PER-SG-1": {"mode": "detect"}}}},
            "accounts": {A: {"trusted_cidrs": ["10.9.0.0/16"]}},
        }
    )
    parse_policy(doc)
    assert schema_errors(doc) == []
