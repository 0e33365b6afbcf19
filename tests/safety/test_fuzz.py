"""Bad input (issue 11, item 4): CloudTrail shapes fuzzed through every handler (and the
Security Hub custom action shape through UndoFunction).

Each example starts from a real shape (every sample in ``events/`` and the events of the
acting scenes, whose resources exist in the account) and breaks it: fields dropped, values of
the wrong type, nulls, unicode, huge lists, records cut after a few keys, events of other
services, or no object at all. Properties, for every handler:

- the invocation either returns, or raises ``MalformedEvent`` with a message, nothing else;
- an event that raised made no write call at all (counted at the botocore level);
- an event the handler did not act on (ignored, no-op, compliant, gone) made no write to EC2,
  SageMaker, Bedrock, IAM or Logs.

The short profile runs in ``make test``; ``pytest -m long tests/safety/test_fuzz.py`` runs
10,000 examples per handler.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from perimeter.core.events import MalformedEvent

from tests.safety.scenes import SCENES
from tests.safety.world import FUNCTION_IDS, RESOURCE_SERVICES, ROOT, World, deployed, is_write

#: every event handler, and UndoFunction (its Security Hub custom action events are among the
#: samples); the sweep is left out: its schedule's event carries nothing it reads
FUZZED = (*FUNCTION_IDS, "UndoFunction")
SAMPLES = [json.loads(p.read_text()) for p in sorted((ROOT / "events").glob("*.json"))]
OTHER_SERVICES = [
    ("s3.amazonaws.com", "PutBucketPolicy"),
    ("kms.amazonaws.com", "Decrypt"),
    ("lambda.amazonaws.com", "UpdateFunctionCode20150331v2"),
    ("signin.amazonaws.com", "ConsoleLogin"),
    ("ec2.amazonaws.com", "RunInstances"),
    ("ec2.amazonaws.com", "DeleteSecurityGroup"),
    ("sagemaker.amazonaws.com", "DeleteEndpoint"),
    ("securityhub.amazonaws.com", "BatchImportFindings"),
    ("", ""),
]
NOT_ACTED = {"ignored", "no-op", "compliant", "group-deleted", "resource-gone"}

leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["", "0.0.0.0/0", "::/0", "-1", "sg-", "tcp", "65536", "22", "default", "\u202e\x00"]),
)
value = st.recursive(
    leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=10,
)


def _paths(node: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    if isinstance(node, dict):
        for k in list(node):
            out.append((node, k))
            _paths(node[k], out)
    elif isinstance(node, list):
        for i in range(len(node)):
            out.append((node, i))
            _paths(node[i], out)
    return out


@st.composite
def broken(draw: st.DrawFn, bases: list[dict[str, Any]]) -> Any:
    event = copy.deepcopy(draw(st.sampled_from(bases)))
    ops = ["delete", "replace", "null", "huge", "truncate", "unicode", "retype"]
    for _ in range(draw(st.integers(1, 4))):
        paths = _paths(event, [])
        if not paths:
            break
        container, key = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(ops))
        if op == "huge":
            # once per event: a huge list inside a huge list multiplies (3000 x 3000 copies of a
            # sample is tens of GB once the handler's JSON copy expands it), far beyond the
            # 256 KB EventBridge delivers; one huge list is already some MB
            ops = [o for o in ops if o != "huge"]
        if op == "delete":
            del container[key]
        elif op == "replace":
            container[key] = draw(value)
        elif op == "null":
            container[key] = None
        elif op == "huge":
            container[key] = [copy.deepcopy(container[key])] * draw(st.integers(500, 3000))
        elif op == "truncate" and isinstance(container[key], dict):
            keep = draw(st.integers(0, max(0, len(container[key]) - 1)))
            container[key] = dict(list(container[key].items())[:keep])
        elif op == "unicode":
            container[key] = draw(st.text(min_size=1, max_size=60))
        elif op == "retype":
            old = container[key]
            container[key] = [old] if not isinstance(old, list) else {"items": old}
    return event


@st.composite
def other_service(draw: st.DrawFn, bases: list[dict[str, Any]]) -> Any:
    event = copy.deepcopy(draw(st.sampled_from(bases)))
    source, name = draw(st.sampled_from(OTHER_SERVICES))
    if isinstance(event.get("detail"), dict):
        event["detail"]["eventSource"], event["detail"]["eventName"] = source, name
    return event


def events(bases: list[dict[str, Any]]) -> st.SearchStrategy[Any]:
    return st.one_of(
        broken(bases),
        broken(bases),
        broken(bases),
        other_service(bases),
        value,  # not an object at all, or an object of nothing we know
        st.just({"detail-type": "AWS API Call via CloudTrail", "source": "aws.ec2", "detail": {}}),
    )


def _check(w: World, function_id: str, event: Any) -> None:
    out = w.invoke_once(function_id, event, fresh=True)
    writes = [c for c in out.calls if is_write(c)]
    if (
        not out.ok
        and isinstance(out.error, NotImplementedError)
        and out.calls[-1:]
        and (
            out.calls[-1].startswith("bedrock.")
            or (out.calls[-1] == "ec2.DescribeSecurityGroups" and "prefix-list-id" in str(out.error))
        )
    ):
        # moto gaps: no Bedrock guardrail or Marketplace API (FACTS.md), no
        # ``ip-permission.prefix-list-id`` filter (the groups naming a modified prefix list; its
        # sample is beyond moto too, see the README).
        # The event was understood and reached those reads; nothing was written before.
        assert not writes, writes
        return
    if not out.ok:
        assert isinstance(out.error, MalformedEvent), f"{type(out.error).__name__}: {out.error}"
        assert str(out.error), "a validation error must say what was wrong"
        assert not writes, f"raised {out.error} after writing {writes}"
        return
    status = out.result.get("status") if isinstance(out.result, dict) else None
    if status in NOT_ACTED:
        assert not [c for c in writes if c.split(".")[0] in RESOURCE_SERVICES], (status, writes)


def _fuzz(function_id: str, examples: int) -> None:
    with deployed() as w:
        bases = list(SAMPLES)
        for scene in SCENES.values():
            bases.append(scene.setup(w))  # real resources behind these, some to act on

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(event=events(bases))
        def check(event: Any) -> None:
            _check(w, function_id, json.loads(json.dumps(event)))

        check()


@pytest.mark.parametrize("function_id", FUZZED)
def test_fuzzed_events_short(function_id: str) -> None:
    _fuzz(function_id, 25)


#: examples per handler in the long run; PERIMETER_FUZZ_EXAMPLES runs fewer (or more) of them
LONG_EXAMPLES = int(os.environ.get("PERIMETER_FUZZ_EXAMPLES", "10000"))


@pytest.mark.long
@pytest.mark.parametrize("function_id", FUZZED)
def test_fuzzed_events_long(function_id: str) -> None:
    _fuzz(function_id, LONG_EXAMPLES)
