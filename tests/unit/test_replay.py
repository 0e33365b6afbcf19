"""``perimeter replay`` (issue 12 B): reading history, routing, judging each record's delta.

Pure tests: a local directory or file is read, no AWS client is ever made (the whole module
runs with botocore's ``_make_api_call`` counting, and must count zero). The S3 path is in
``tests/integration/test_replay_s3.py``.
"""

from __future__ import annotations

import copy
import datetime as dt
import gzip
import io
import json
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import botocore.client
import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from perimeter.policy import default_policy_text, load_default_policy, parse_policy
from perimeter_local import replay_read
from perimeter_local.cli import main
from perimeter_local.patterns import compile_matcher, matches
from perimeter_local.replay import exemption_snippet, principal_pattern, replay, snippet_yaml
from perimeter_local.replay_judge import JUDGES
from perimeter_local.replay_read import HistoryError, iter_json_records, read_lake_results, read_local
from perimeter_local.replay_route import Router, template_routes
from perimeter_local.replay_synth import EXPECTED, write_history

from tests.corpus import corpus_dir
from tests.unit.test_patterns import CASES, EVENT, events

ROOT = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 11, 29)


def _schema() -> dict[str, Any]:
    """``policy/schema.json`` (the repository's ``policy`` is the package's policy folder)."""
    return json.loads(resources.files("perimeter.policy").joinpath("schema.json").read_text())


@pytest.fixture(autouse=True)
def no_aws_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every botocore API call, from any client: a replay of local files makes none."""
    calls: list[str] = []
    real = botocore.client.BaseClient._make_api_call

    def counting(self: Any, operation: str, params: Any) -> Any:
        calls.append(operation)
        return real(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    yield calls
    assert calls == [], f"a local replay called AWS: {calls}"


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(template_routes(ROOT / "template.yaml"))


# --- the matcher: compiled once, same answers --------------------------------------------


@pytest.mark.parametrize(("pattern", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_compiled_matcher_agrees_with_matches(pattern: dict[str, Any], expected: bool) -> None:
    match = compile_matcher(pattern)
    assert match(EVENT) is expected
    assert match(copy.deepcopy(EVENT)) is expected  # the remembered answer is the same


@settings(max_examples=150, deadline=None)
@given(events)
def test_compiled_matcher_agrees_on_any_event(event: dict[str, Any]) -> None:
    for _, pattern, _ in CASES:
        assert compile_matcher(pattern)(event) is matches(pattern, event)


def test_every_template_function_has_a_replay_judgment(router: Router) -> None:
    assert {r.function for r in router.routes} == set(JUDGES)


def test_prefilter_index_holds_exactly_the_patterns_names(router: Router) -> None:
    keys = set(router.event_keys)
    assert ("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress") in keys
    assert ("iam.amazonaws.com", "PutRolePolicy") in keys
    assert ("ec2.amazonaws.com", "DescribeInstances") not in keys
    assert router.unindexed == []  # every rule of the template lists its sources and names


# --- reading -----------------------------------------------------------------------------


def test_records_array_is_streamed_in_small_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay_read, "CHUNK", 7)  # every record straddles many buffer ends
    records = [{"eventName": f"E{i}", "n": i * 1.5, "s": "x" * i, "l": [True, None, -3]} for i in range(40)]
    text = json.dumps({"Records": records}, indent=1)
    assert list(iter_json_records(io.StringIO(text))) == records
    assert list(iter_json_records(io.StringIO(json.dumps(records)))) == records
    assert list(iter_json_records(io.StringIO(json.dumps(records[0])))) == [records[0]]


def test_truncated_history_file_fails_naming_it() -> None:
    with pytest.raises(HistoryError, match=r"trail\.json"):
        list(iter_json_records(io.StringIO('{"Records":[{"a":1},{"b":'), "trail.json"))


def test_directory_is_read_recursively_gz_and_plain(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    with gzip.open(tmp_path / "a" / "b" / "x.json.gz", "wt") as fh:
        json.dump({"Records": [{"eventName": "One"}, {"eventName": "Two"}]}, fh)
    (tmp_path / "a" / "y.json").write_text(json.dumps({"eventName": "Three"}))
    (tmp_path / "a" / "notes.txt").write_text("not history")
    (tmp_path / "CloudTrail-Digest").mkdir()
    (tmp_path / "CloudTrail-Digest" / "d.json").write_text('{"awsAccountId": "1", "digestEndTime": "x"}')
    stats = replay_read.ReadStats()
    assert [r["eventName"] for r in read_local(tmp_path, stats)] == ["One", "Two", "Three"]  # path order
    assert stats.files == 2


# --- the real corpus ---------------------------------------------------------------------


def _corpus_expectations() -> tuple[int, int]:
    """(records, routed) from what the records say: a routed call is one the template lists
    by source and name, that did not fail."""
    routed_names = {
        "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress", "CreateSecurityGroup",
        "RunInstances", "CreateNetworkInterface", "ModifyInstanceAttribute", "CreateModel",
        "CreateEndpoint", "UpdateGuardrail", "DeleteGuardrail", "AttachRolePolicy", "CreateVpc",
        "DeleteFlowLogs",
    }  # fmt: skip
    total = routed = 0
    for path in corpus_dir().rglob("*.json"):
        record = json.loads(path.read_text())
        detail = record.get("detail", record)
        total += 1
        routed += detail["eventName"] in routed_names and not detail.get("errorCode")
    return total, routed


#: What each corpus record says, read from the file (requestParameters / responseElements),
#: judged by DESIGN.md §2 under policy/default.yaml: (function, controls violated, remediated).
CORPUS_VERDICTS: dict[str, list[tuple[str, set[str], set[str]]]] = {
    # tcp/443 from 0.0.0.0/16: not the world, 443 not high-risk
    "AuthorizeSecurityGroupIngress/panther-1.json": [("SgGuardFunction", set(), set())],
    # tcp/22 from 0.0.0.0/0: world-open and SSH from outside
    "AuthorizeSecurityGroupIngress/panther-2.json": [
        ("SgGuardFunction", {"PER-SG-1", "PER-SG-2"}, {"PER-SG-1", "PER-SG-2"})
    ],
    # tcp/22 from 127.0.0.1/32
    "AuthorizeSecurityGroupIngress/panther-3.json": [("SgGuardFunction", set(), set())],
    # tcp/55 from 0.0.0.0/0 and ::/0: world-open, 55 not high-risk
    "AuthorizeSecurityGroupIngress/reflex-1.json": [("SgGuardFunction", {"PER-SG-1"}, {"PER-SG-1"})],
    # tcp/22 from 208.236.235.254/0: host bits set, still the world
    "AuthorizeSecurityGroupIngress/stratus-1.json": [
        ("SgGuardFunction", {"PER-SG-1", "PER-SG-2"}, {"PER-SG-1", "PER-SG-2"})
    ],
    # all traffic from 0.0.0.0/0 and ::/0 (its stored envelope is redacted: routed by its record)
    "AuthorizeSecurityGroupIngress/streamalert-1.json": [
        ("SgGuardFunction", {"PER-SG-1", "PER-SG-2", "PER-SG-3"}, {"PER-SG-1", "PER-SG-2", "PER-SG-3"})
    ],
    # all traffic to 0.0.0.0/0 on an untagged group: PER-SG-4 is for the model tier only
    "AuthorizeSecurityGroupEgress/panther-1.json": [("SgGuardFunction", set(), set())],
    "CreateSecurityGroup/panther-1.json": [("SgGuardFunction", set(), set())],
    "CreateSecurityGroup/reflex-1.json": [("SgGuardFunction", set(), set())],
    # no VpcConfig, no EnableNetworkIsolation: detect-only controls
    "CreateModel/awsdocs-sagemaker-1.json": [("ModelPostureFunction", {"PER-VPC-1", "PER-VPC-2"}, set())],
    # a VPC is created without a flow log, and without a model: outside flow_logs.scope
    "CreateVpc/panther-1.json": [("FlowLogGuardFunction", set(), set())],
}


def test_corpus_replay_decides_every_routed_record(router: Router) -> None:
    policy = load_default_policy()
    total, routed = _corpus_expectations()
    seen = 0
    for path in sorted(corpus_dir().rglob("*.json")):
        name = path.relative_to(corpus_dir()).as_posix()
        tally = replay(read_local(path), router, policy, today=TODAY)
        seen += tally.routed
        assert not tally.malformed, name
        decided = {f: sum(t.outcomes.values()) for f, t in tally.functions.items()}
        assert all(n == 1 for n in decided.values()), name  # one verdict per routed function
        for function, violated, remediated in CORPUS_VERDICTS.get(name, []):
            assert function in tally.functions, name
            assert {c for c, t in tally.controls.items() if t.events} == violated, name
            assert {c for c, t in tally.controls.items() if t.remediate_events} == remediated, name
    assert seen == routed
    whole = replay(read_local(corpus_dir()), router, policy, today=TODAY)
    assert (whole.records, whole.routed) == (total, routed)
    sg = {c: (t.events, t.remediate_events) for c, t in whole.controls.items()}
    assert sg["PER-SG-1"] == (4, 4) and sg["PER-SG-2"] == (3, 3) and sg["PER-SG-3"] == (1, 1)
    assert "PER-FL-1" not in sg and sg["PER-VPC-1"] == (1, 0) and sg["PER-VPC-2"] == (1, 0)
    # RunInstances/c7n-1, c7n-2 and CreateNetworkInterface/awsdocs-efs-1 name a group "default"
    # in their responses; the default-SG move plan itself needs account state.
    attaches = sum(n for why, n in whole.undetermined.items() if "attaches a default SG" in why)
    assert attaches == 3
    # AttachRolePolicy (x2) and DeleteFlowLogs (x2) cannot be judged without account state.
    assert whole.functions["IamGuardFunction"].outcomes == {"undetermined": 2}
    assert whole.functions["FlowLogGuardFunction"].outcomes == {"clean": 1, "undetermined": 2}


# --- a generated history: the counts the generator wrote ---------------------------------


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    root = tmp_path_factory.mktemp("history")
    return root, write_history(root, 6_000, per_file=700, seed=3)


def test_generated_history_counts_match_what_was_written(router: Router, history: tuple[Path, Any]) -> None:
    root, written = history
    tally = replay(read_local(root), router, load_default_policy(), today=TODAY)
    assert tally.records == written.records == 6_000
    assert tally.routed == written.routed
    assert {c: t.events for c, t in tally.controls.items()} == {c: n for c, n in written.events.items() if n}
    assert {c: t.remediate_events for c, t in tally.controls.items() if t.remediate_events} == {
        c: n for c, n in written.remediate.items() if n
    }
    assert set(EXPECTED) >= {k for k in written.kinds if k != "noise"}


def test_exemption_snippet_validates_and_silences_the_known_good(
    router: Router, history: tuple[Path, Any]
) -> None:
    root, written = history
    policy = load_default_policy()
    before = replay(read_local(root), router, policy, today=TODAY)
    deployer = "arn:aws:sts::111122223333:assumed-role/TerraformDeploy/*"
    exemptions, silenced = exemption_snippet(before, known_good=[deployer], today=TODAY)
    assert [e["principal"] for e in exemptions] == [deployer]
    assert silenced == written.remediate_by_actor[deployer] > 0

    doc = yaml.safe_load(default_policy_text())
    doc["exemptions"] = yaml.safe_load(snippet_yaml(exemptions))["exemptions"]
    schema = _schema()
    jsonschema.validate(doc, schema)
    after = replay(read_local(root), router, parse_policy(doc), today=TODAY)
    total_before = sum(t.remediate for t in before.controls.values())
    total_after = sum(t.remediate for t in after.controls.values())
    assert total_before - total_after == silenced
    assert all(deployer not in t.remediate_by_actor for t in after.controls.values())
    assert sum(t.exempt for t in after.controls.values()) == silenced


def test_snippet_without_known_good_offers_top_actors(history: tuple[Path, Any], router: Router) -> None:
    root, _ = history
    tally = replay(read_local(root), router, load_default_policy(), today=TODAY)
    exemptions, _ = exemption_snippet(tally, today=TODAY, limit=3)
    assert len(exemptions) == 3
    assert exemptions[0]["principal"].endswith("assumed-role/TerraformDeploy/*")  # the busiest actor
    assert all(e["expires"] == "2027-02-27" for e in exemptions)


def test_principal_pattern_groups_sessions_of_a_role() -> None:
    assert principal_pattern("arn:aws:sts::1:assumed-role/R/sess-1") == "arn:aws:sts::1:assumed-role/R/*"
    assert principal_pattern("arn:aws:iam::1:user/u") == "arn:aws:iam::1:user/u"
    assert principal_pattern(None) is None


# --- CloudTrail Lake results -------------------------------------------------------------


def _lake_page(records: list[dict[str, Any]]) -> dict[str, Any]:
    """A GetQueryResults response for the query ``perimeter replay --print-lake-sql`` prints:
    rows are lists of one-entry string maps (botocore's QueryResultRows shape)."""
    rows = []
    for r in records:
        cells = {
            "eventid": r.get("eventID"),
            "eventtime": r.get("eventTime"),
            "eventsource": r["eventSource"],
            "eventname": r["eventName"],
            "awsregion": r.get("awsRegion"),
            "recipientaccountid": r.get("recipientAccountId"),
            "errorcode": r.get("errorCode"),
            "useridentity_arn": r.get("userIdentity", {}).get("arn"),
            "useridentity_type": r.get("userIdentity", {}).get("type"),
            "useridentity_accountid": r.get("userIdentity", {}).get("accountId"),
            "useridentity_invokedby": r.get("userIdentity", {}).get("invokedBy"),
            # Lake keeps requestparameters as map<string,string>: nested values are JSON text
            "requestparameters": json.dumps(
                {
                    k: v if isinstance(v, str) else json.dumps(v)
                    for k, v in (r.get("requestParameters") or {}).items()
                }
            ),
            "responseelements": json.dumps(r.get("responseElements") or {}),
        }
        rows.append([{k: v} for k, v in cells.items() if v is not None])
    return {"QueryStatus": "FINISHED", "QueryResultRows": rows}


def test_lake_page_shape_is_botocores() -> None:
    import botocore.session

    model = botocore.session.get_session().get_service_model("cloudtrail")
    shape = model.operation_model("GetQueryResults").output_shape.members["QueryResultRows"]
    assert shape.type_name == "list" and shape.member.type_name == "list"
    cell = shape.member.member
    assert (cell.type_name, cell.key.type_name, cell.value.type_name) == ("map", "string", "string")
    page = _lake_page([{"eventSource": "ec2.amazonaws.com", "eventName": "CreateVpc"}])
    for row in page["QueryResultRows"]:
        assert all(isinstance(c, dict) and len(c) == 1 for c in row)
        assert all(isinstance(k, str) and isinstance(v, str) for c in row for k, v in c.items())


def test_lake_results_judge_like_the_trail_files(
    router: Router, history: tuple[Path, Any], tmp_path: Path
) -> None:
    root, _ = history
    routed = [r for r in read_local(root) if router.routes_for(r)[1]]
    pages = [_lake_page(routed[i : i + 250]) for i in range(0, len(routed), 250)]
    (tmp_path / "page-1.json").write_text(json.dumps(pages[0], indent=2))  # one pretty page
    (tmp_path / "rest.jsonl").write_text("\n".join(json.dumps(p) for p in pages[1:]))  # JSON lines
    policy = load_default_policy()
    from_lake = replay(read_lake_results([tmp_path]), router, policy, today=TODAY)
    from_files = replay(read_local(root), router, policy, today=TODAY)
    assert from_lake.routed == from_files.routed == len(routed)
    for cid, t in from_files.controls.items():
        lake = from_lake.controls[cid]
        assert (lake.events, lake.remediate, lake.actors) == (t.events, t.remediate, t.actors), cid


# --- the command -------------------------------------------------------------------------


def test_cli_replays_the_corpus_as_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(corpus_dir()), "-t", str(ROOT / "template.yaml")]) == 0
    text = capsys.readouterr().out
    assert "Dry run: nothing was changed" in text and "PER-SG-1" in text and "exemptions:" in text
    assert main(["replay", str(corpus_dir()), "-t", str(ROOT / "template.yaml"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["controls"]["PER-SG-1"]["would_remediate_events"] == 4
    doc = yaml.safe_load(default_policy_text())
    doc["exemptions"] = report["exemption_snippet"]["exemptions"]
    jsonschema.validate(doc, _schema())


def test_cli_prints_the_lake_sql_of_routed_calls(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--print-lake-sql", "-t", str(ROOT / "template.yaml")]) == 0
    sql = capsys.readouterr().out
    assert "'AuthorizeSecurityGroupIngress'" in sql and "'PutRolePolicy'" in sql
    assert "errorcode IS NULL" in sql and "DescribeInstances" not in sql
    # every column the SQL selects is one record_from_row reads
    selected = re.findall(r"AS (\w+)|^SELECT (\w+)|, (\w+)(?=,|$)", sql, flags=re.M)
    assert {"useridentity_arn", "useridentity_accountid", "requestparameters"} <= {
        c for g in selected for c in g
    }


# --- progress and malformed records ------------------------------------------------------


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def test_progress_only_on_a_terminal(router: Router, history: tuple[Path, Any]) -> None:
    from perimeter_local.replay import Progress

    root, written = history
    for tty in (True, False):
        stream = _Stream(tty)
        replay(read_local(root), router, load_default_policy(), today=TODAY, progress=Progress(stream=stream))
        text = stream.getvalue()
        if tty:
            assert f"{written.records:,} records" in text and text.endswith("records/s\n")
        else:
            assert text == ""


def test_malformed_routed_record_is_counted_not_fatal(router: Router) -> None:
    good = json.loads((corpus_dir() / "AuthorizeSecurityGroupIngress" / "panther-2.json").read_text())
    good = good.get("detail", good)
    bad = copy.deepcopy(good)
    del bad["requestParameters"]["groupId"]  # SgGuard's extractor needs it
    tally = replay([bad, good, "not a record"], router, load_default_policy(), today=TODAY)
    assert (tally.records, tally.routed, tally.unparsable) == (3, 2, 1)
    assert tally.functions["SgGuardFunction"].outcomes == {"malformed": 1, "violating": 1}
    assert any("groupId" in why for why in tally.malformed)
    assert tally.controls["PER-SG-1"].events == 1


# --- the shared samples (events/) as a history -------------------------------------------

#: sample -> (function, controls violated) under policy/default.yaml, from each sample's content
SAMPLE_VERDICTS = {
    "AuthorizeSecurityGroupIngress--world-ssh.json": ("SgGuardFunction", {"PER-SG-1", "PER-SG-2"}),
    "AuthorizeSecurityGroupIngress--shorthand-form.json": ("SgGuardFunction", {"PER-SG-1", "PER-SG-2"}),
    "AuthorizeSecurityGroupIngress--world-all-ipv6.json": (
        "SgGuardFunction",
        {"PER-SG-1", "PER-SG-2", "PER-SG-3"},
    ),
    "AuthorizeSecurityGroupIngress--harmless-https-from-vpc.json": ("SgGuardFunction", set()),
    # the group's model-tier tag is not in an Authorize record: judged as an untagged group
    "AuthorizeSecurityGroupEgress--model-tier-all-traffic.json": ("SgGuardFunction", set()),
    "CreateSecurityGroup--model-tier.json": ("SgGuardFunction", {"PER-SG-4"}),
    "CreateNotebookInstance--direct-internet.json": ("ModelPostureFunction", {"PER-VPC-1"}),
    "CreateModel--deepseek-r1-outside-vpc.json": ("ModelPostureFunction", {"PER-VPC-1", "PER-VPC-2"}),
    "PutRolePolicy--invoke-on-star.json": ("IamGuardFunction", {"PER-IAM-1"}),
    "PutUserPolicy--bedrock-invoke-star.json": ("IamGuardFunction", {"PER-IAM-1"}),
    "CreatePolicyVersion--invoke-on-star.json": ("IamGuardFunction", {"PER-IAM-1"}),
    "CreateVpc--new-vpc.json": ("FlowLogGuardFunction", set()),  # outside flow_logs.scope
}


@pytest.mark.parametrize(("sample", "expected"), SAMPLE_VERDICTS.items(), ids=list(SAMPLE_VERDICTS))
def test_sample_events_replay_as_the_event_path_would_judge_their_delta(
    router: Router, sample: str, expected: tuple[str, set[str]]
) -> None:
    function, controls = expected
    tally = replay(read_local(ROOT / "events" / sample), router, load_default_policy(), today=TODAY)
    assert function in tally.functions
    assert {c for c, t in tally.controls.items() if t.events} == controls


def test_perimeters_own_roles_are_ignored_like_the_loop_guard(router: Router) -> None:
    from perimeter_local.replay_route import self_role_pattern

    own = sorted((ROOT / "events").glob("*--perimeter-own-role.json"))
    assert len(own) >= 2
    roles = self_role_pattern(ROOT / "template.yaml", "perimeter")
    records = [json.loads(p.read_text()) for p in own]
    ignored = replay(records, router, load_default_policy(), today=TODAY, self_roles=roles)
    assert ignored.own_role == len(own) and not ignored.functions
    other_stack = self_role_pattern(ROOT / "template.yaml", "someone-else")
    judged = replay(records, router, load_default_policy(), today=TODAY, self_roles=other_stack)
    assert judged.own_role == 0 and judged.functions


def test_cli_reads_lake_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = [json.loads(p.read_text()) for p in sorted(corpus_dir().rglob("*.json"))]
    records = [r.get("detail", r) for r in records]
    (tmp_path / "lake-0.json").write_text(json.dumps(_lake_page(records)))
    args = ["replay", "--lake-results", str(tmp_path / "lake-0.json"), "-t", str(ROOT / "template.yaml")]
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    _, routed = _corpus_expectations()
    # Lake's query already drops failed calls; the page holds them anyway and routing drops them.
    assert (report["records"], report["routed"]) == (len(records), routed)
    assert report["controls"]["PER-SG-1"]["would_remediate_events"] == 4


def _all_vpcs_policy() -> Any:
    doc = yaml.safe_load(default_policy_text())
    doc.setdefault("flow_logs", {})["scope"] = "all-vpcs"
    return parse_policy(doc)


def test_new_vpcs_violate_fl1_when_the_scope_takes_every_vpc(
    router: Router, history: tuple[Path, Any]
) -> None:
    root, written = history
    tally = replay(read_local(root), router, _all_vpcs_policy(), today=TODAY)
    fl1 = tally.controls["PER-FL-1"]
    assert fl1.events == fl1.remediate_events == written.kinds["new_vpc"] > 0
    corpus = replay(read_local(corpus_dir() / "CreateVpc"), router, _all_vpcs_policy(), today=TODAY)
    assert (corpus.controls["PER-FL-1"].events, corpus.controls["PER-FL-1"].remediate_events) == (1, 1)


def test_removals_and_fixes_violate_nothing(router: Router) -> None:
    from perimeter_local.replay_judge import REMOVALS

    routed_names = {name for _, name in router.event_keys}
    assert routed_names >= REMOVALS  # every removal replay knows is one the template routes
    records = [
        {
            "eventSource": source,
            "eventName": name,
            "awsRegion": "eu-west-1",
            "recipientAccountId": "111122223333",
            "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/u"},
            "requestParameters": {},
            "responseElements": None,
        }
        for source, name in router.event_keys
        if name in REMOVALS
    ]
    tally = replay(records, router, load_default_policy(), today=TODAY)
    assert tally.routed == len(records) > 0
    assert not tally.controls and not tally.undetermined and not tally.malformed
