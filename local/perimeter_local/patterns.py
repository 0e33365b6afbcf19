"""Amazon EventBridge event-pattern matching, in process.

Why this module exists: the Perimeter local runner has to decide which of the
template's EventBridge rules an event is routed to, without reaching AWS.
moto ships a matcher (``moto.events.models.EventPattern``) but it has gaps:
it never matches fields inside arrays of objects, treats ``true`` as the
number 1, accepts malformed patterns that EventBridge rejects at ``PutRule``
and lets an unknown operator match anything. So we implement the documented
semantics ("Content filtering in Amazon EventBridge event patterns") here,
with no dependency beyond the standard library.

Where the documentation is silent we follow aws/event-ruler, the open-source
matching library AWS publishes for these patterns:

* Field values are type-aware: ``"5"`` never equals ``5``; ``true`` is not a
  number; a number pattern matches any numerically equal number (5 == 5.0).
* The event is seen as leaves (strings, numbers, booleans, null) reached by
  key paths, arrays being "crushed": a pattern value matches when *any* leaf on
  that path matches. Objects and empty arrays are not leaves, so
  ``exists: true`` is false for them and ``exists: false`` true.
* Array consistency: the fields a pattern matches must not come from
  *different* elements of the same array of objects (``{"a": {"x": [1],
  "y": [2]}}`` does not match ``{"a": [{"x": 1}, {"y": 2}]}``).
* ``exists: false`` asks whether the path has a leaf that is consistent with
  the array elements already chosen by the fields that sort before it (the
  rule's fields are examined in sorted dotted-name order, as event-ruler's
  state machine does).
* ``$or`` is expanded into alternative sub-patterns; the pattern matches when
  any alternative does.

Not modelled: event-ruler's numeric precision limits (it compares numbers with
six decimal places within +/-5e9; we use Python floats/ints), IP-address
normalisation of plain string values, and the legacy treatment of a malformed
``$or`` as an ordinary field name (we raise :class:`PatternError` instead).
"""

from __future__ import annotations

import ipaddress
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["PatternError", "compile_matcher", "matches", "validate"]

Test = Callable[[Any], bool]
Arrays = Mapping[int, int]  # array id -> index of the element a leaf lies in

_OPERATORS = frozenset(
    {
        "anything-but",
        "cidr",
        "equals-ignore-case",
        "exists",
        "numeric",
        "prefix",
        "suffix",
        "wildcard",
    }
)
_NUMERIC_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class PatternError(ValueError):
    """A malformed event pattern; the message starts with the path of the bad part."""


@dataclass(frozen=True)
class _Condition:
    """One field of a (``$or``-free) sub-pattern: its path and what it accepts."""

    path: tuple[str, ...]
    tests: tuple[Test, ...]  # any of these on any consistent leaf satisfies it
    absent_ok: bool  # the list held {"exists": false}


@dataclass(frozen=True)
class _Leaf:
    value: Any
    arrays: Arrays


def validate(pattern: Any) -> None:
    """Raise :class:`PatternError` if ``pattern`` is not a valid event pattern."""
    _compile(pattern)


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether EventBridge would route ``event`` to a rule with ``pattern``.

    Raises :class:`PatternError` for a malformed pattern.
    """
    alternatives = _compile(pattern)
    if not isinstance(event, Mapping):
        raise TypeError(f"event must be a mapping, got {type(event).__name__}")
    leaves = _flatten(event)
    return any(_satisfied(conds, 0, leaves, {}) for conds in alternatives)


# --- matching ---------------------------------------------------------------


def compile_matcher(pattern: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], bool]:
    """Compile ``pattern`` once and return a function matching events against it.

    Same answers as :func:`matches`, for callers that match many events (``perimeter
    replay``): the pattern is validated and expanded once, and each event is first cut down
    to the key paths the pattern names, so a large ``requestParameters`` is never walked.
    Cutting is exact: a condition only reads leaves on its own path, and array consistency
    only concerns arrays on those paths.

    Raises :class:`PatternError` for a malformed pattern.
    """
    alternatives = _compile(pattern)
    tree: dict[str, Any] = {}
    for conds in alternatives:
        for cond in conds:
            node = tree
            for key in cond.path[:-1]:
                node = node.setdefault(key, {})
                if node is _KEEP:
                    break
            else:
                node[cond.path[-1]] = _KEEP

    # Pruned events repeat (the same source, name and error code over and over): the answer
    # for one pruned shape is remembered, up to a bound.
    answers: dict[Any, bool] = {}

    def match(event: Mapping[str, Any]) -> bool:
        if not isinstance(event, Mapping):
            raise TypeError(f"event must be a mapping, got {type(event).__name__}")
        key = _key(event, tree)
        found = answers.get(key) if key is not None else None
        if found is not None:
            return found
        leaves = _flatten(_prune(event, tree))
        answer = any(_satisfied(conds, 0, leaves, {}) for conds in alternatives)
        if key is not None and len(answers) < _MEMO_LIMIT:
            answers[key] = answer
        return answer

    return match


_KEEP: dict[str, Any] = {}  # sentinel: keep the whole value at this path
_MEMO_LIMIT = 4096
_SCALAR_TYPES = (str, int, float, bool, type(None))


def _key(node: Any, tree: Mapping[str, Any]) -> Any:
    """A hashable, type-exact image of ``node`` cut to ``tree`` (None when it holds something
    that is not JSON). Types are part of the key: ``"5"``, ``5``, ``5.0`` and ``True`` match
    differently. Walks the pattern's few paths, not the event's many keys."""
    kind = type(node)
    if kind is dict or (kind is not list and isinstance(node, Mapping)):
        if tree is _KEEP:
            parts = tuple(sorted(((k, _key(v, _KEEP)) for k, v in node.items()), key=lambda kv: str(kv[0])))
        else:
            parts = tuple((k, _key(node[k], sub)) for k, sub in tree.items() if k in node)
        if any(v is None for _, v in parts):
            return None
        return ("{", parts)
    if kind is list or kind is tuple:
        items = tuple(_key(v, tree) for v in node)
        return None if any(v is None for v in items) else ("[", items)
    if kind in _SCALAR_TYPES:
        return (kind, node)
    return None


def _prune(node: Any, tree: Mapping[str, Any]) -> Any:
    if tree is _KEEP:
        return node
    if isinstance(node, Mapping):
        return {k: _prune(v, tree[k]) for k, v in node.items() if k in tree}
    if _is_array(node):
        return [_prune(item, tree) for item in node]
    return node


def _is_array(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _flatten(event: Mapping[str, Any]) -> dict[tuple[str, ...], list[_Leaf]]:
    """Map each key path of ``event`` to its leaves, recording array membership."""
    leaves: dict[tuple[str, ...], list[_Leaf]] = {}
    next_array_id = 0

    def walk(node: Any, path: tuple[str, ...], arrays: Arrays) -> None:
        nonlocal next_array_id
        if isinstance(node, Mapping):
            for key, value in node.items():
                walk(value, (*path, str(key)), arrays)
        elif _is_array(node):
            array_id = next_array_id
            next_array_id += 1
            for index, item in enumerate(node):
                nested = isinstance(item, Mapping) or _is_array(item)
                walk(item, path, {**arrays, array_id: index} if nested else arrays)
        else:
            leaves.setdefault(path, []).append(_Leaf(node, arrays))

    walk(event, (), {})
    return leaves


def _merge(chosen: Arrays, leaf: Arrays) -> Arrays | None:
    """Combine array memberships, or None if they pick different elements."""
    for array_id, index in leaf.items():
        if chosen.get(array_id, index) != index:
            return None
    return {**chosen, **leaf}


def _satisfied(
    conds: list[_Condition],
    i: int,
    leaves: Mapping[tuple[str, ...], list[_Leaf]],
    chosen: Arrays,
) -> bool:
    """Depth-first search for leaves satisfying ``conds[i:]`` consistently."""
    if i == len(conds):
        return True
    cond = conds[i]
    present = False
    for leaf in leaves.get(cond.path, ()):
        merged = _merge(chosen, leaf.arrays)
        if merged is None:
            continue
        present = True
        if any(test(leaf.value) for test in cond.tests) and _satisfied(conds, i + 1, leaves, merged):
            return True
    return cond.absent_ok and not present and _satisfied(conds, i + 1, leaves, chosen)


# --- compiling (and validating) patterns ------------------------------------


def _type(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _compile(pattern: Any) -> list[list[_Condition]]:
    """Validate ``pattern`` and expand it into ``$or``-free alternatives."""
    if not isinstance(pattern, Mapping):
        raise PatternError(f"<pattern>: expected an object, got {_type(pattern)}")
    alternatives = _compile_object(pattern, (), "", in_or=False)
    return [sorted(conds, key=lambda c: ".".join(c.path)) for conds in alternatives]


def _compile_object(
    obj: Mapping[str, Any], path: tuple[str, ...], where: str, in_or: bool
) -> list[list[_Condition]]:
    if not obj:
        raise PatternError(f"{where or '<pattern>'}: empty objects are not allowed")
    alternatives: list[list[_Condition]] = [[]]
    for key, value in obj.items():
        if not isinstance(key, str):
            raise PatternError(f"{where or '<pattern>'}: keys must be strings, got {key!r}")
        here = f"{where}.{key}" if where else key
        if key == "$or":
            branches = _compile_or(value, path, here)
            alternatives = [a + b for a in alternatives for b in branches]
        elif in_or and key in _OPERATORS:
            raise PatternError(f"{here}: {key!r} is an operator, not a field name")
        elif isinstance(value, Mapping):
            nested = _compile_object(value, (*path, key), here, in_or)
            alternatives = [a + b for a in alternatives for b in nested]
        elif isinstance(value, list):
            cond = _compile_leaf(value, (*path, key), here)
            alternatives = [[*a, cond] for a in alternatives]
        else:
            raise PatternError(f"{here}: expected a list of values or operators, got {_type(value)}")
    return alternatives


def _compile_or(value: Any, path: tuple[str, ...], where: str) -> list[list[_Condition]]:
    if not isinstance(value, list) or len(value) < 2:
        raise PatternError(f"{where}: expected a list of at least two objects")
    branches: list[list[_Condition]] = []
    for n, branch in enumerate(value):
        if not isinstance(branch, Mapping):
            raise PatternError(f"{where}[{n}]: expected an object, got {_type(branch)}")
        branches.extend(_compile_object(branch, path, f"{where}[{n}]", in_or=True))
    return branches


def _compile_leaf(values: list[Any], path: tuple[str, ...], where: str) -> _Condition:
    if not values:
        raise PatternError(f"{where}: empty lists are not allowed")
    tests: list[Test] = []
    absent_ok = False
    for n, value in enumerate(values):
        here = f"{where}[{n}]"
        if isinstance(value, Mapping):
            if list(value) == ["exists"]:
                if not isinstance(value["exists"], bool):
                    raise PatternError(f"{here}.exists: expected true or false")
                if value["exists"]:
                    tests.append(lambda v: True)
                else:
                    absent_ok = True
            else:
                tests.append(_compile_operator(value, here))
        elif value is None or isinstance(value, (str, bool, int, float)):
            if isinstance(value, float) and not math.isfinite(value):
                raise PatternError(f"{here}: numbers must be finite")
            tests.append(_equals(value))
        else:
            raise PatternError(
                f"{here}: expected a string, number, boolean, null or operator object, got {_type(value)}"
            )
    return _Condition(path, tuple(tests), absent_ok)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _equals(expected: Any) -> Test:
    """Type-aware equality: strings, numbers, booleans and null never cross-match."""
    if expected is None:
        return lambda v: v is None
    if isinstance(expected, bool):
        return lambda v: isinstance(v, bool) and v == expected
    if _is_number(expected):
        return lambda v: _is_number(v) and v == expected
    return lambda v: isinstance(v, str) and v == expected


def _compile_operator(spec: Mapping[str, Any], where: str) -> Test:
    if len(spec) != 1:
        raise PatternError(f"{where}: an operator object must have exactly one key")
    ((name, arg),) = spec.items()
    here = f"{where}.{name}"
    if name == "prefix" or name == "suffix":
        return _affix(name, arg, here)
    if name == "equals-ignore-case":
        text = _string(arg, here).lower()
        return lambda v: isinstance(v, str) and v.lower() == text
    if name == "wildcard":
        regex = _wildcard(_string(arg, here), here)
        return lambda v: isinstance(v, str) and regex.fullmatch(v) is not None
    if name == "numeric":
        return _numeric(arg, here)
    if name == "cidr":
        return _cidr(arg, here)
    if name == "anything-but":
        return _anything_but(arg, here)
    raise PatternError(f"{where}: unknown operator {name!r}")


def _string(arg: Any, where: str) -> str:
    if not isinstance(arg, str):
        raise PatternError(f"{where}: expected a string, got {_type(arg)}")
    return arg


def _affix(name: str, arg: Any, where: str) -> Test:
    """``prefix``/``suffix``, optionally ``{"equals-ignore-case": ...}``."""
    fold = isinstance(arg, Mapping)
    if fold:
        if list(arg) != ["equals-ignore-case"]:
            raise PatternError(f'{where}: expected a string or {{"equals-ignore-case": ...}}')
        text = _string(arg["equals-ignore-case"], f"{where}.equals-ignore-case").lower()
    else:
        text = _string(arg, where)
    ends = str.startswith if name == "prefix" else str.endswith
    return lambda v: isinstance(v, str) and ends(v.lower() if fold else v, text)


def _wildcard(text: str, where: str) -> re.Pattern[str]:
    """Compile a wildcard (``*`` = any run of characters, ``\\*`` = literal star)."""
    parts: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "*":
            if parts and parts[-1] == ".*":
                raise PatternError(f"{where}: consecutive wildcard characters are not allowed")
            parts.append(".*")
            i += 1
        elif char == "\\":
            escaped = text[i + 1 : i + 2]
            if escaped not in ("*", "\\"):
                raise PatternError(f"{where}: a backslash may only escape '*' or '\\'")
            parts.append(re.escape(escaped))
            i += 2
        else:
            parts.append(re.escape(char))
            i += 1
    return re.compile("".join(parts), re.DOTALL)


def _numeric(arg: Any, where: str) -> Test:
    """``[op, n]`` or ``[">"|">=", low, "<"|"<=", high]``."""
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        raise PatternError(f"{where}: expected [operator, number] or a two-sided range")
    checks: list[tuple[Callable[[Any, Any], bool], float]] = []
    for op, bound in zip(arg[::2], arg[1::2], strict=True):
        if not isinstance(op, str) or op not in _NUMERIC_OPS:
            raise PatternError(f"{where}: unknown numeric operator {op!r}")
        if not _is_number(bound) or not math.isfinite(bound):
            raise PatternError(f"{where}: the value after {op!r} must be a number")
        checks.append((_NUMERIC_OPS[op], bound))
    if len(arg) == 4 and not (arg[0] in (">", ">=") and arg[2] in ("<", "<=") and arg[1] < arg[3]):
        raise PatternError(f"{where}: a range must be [>|>=, low, <|<=, high] with low < high")
    return lambda v: _is_number(v) and all(check(v, bound) for check, bound in checks)


def _cidr(arg: Any, where: str) -> Test:
    text = _string(arg, where)
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as exc:
        raise PatternError(f"{where}: invalid CIDR block {arg!r}") from exc

    def test(value: Any) -> bool:
        if not isinstance(value, str):
            return False
        try:
            return ipaddress.ip_address(value) in network
        except ValueError:
            return False

    return test


def _anything_but(arg: Any, where: str) -> Test:
    """Negate a value, a list of values, or one of the string operators."""
    if isinstance(arg, Mapping):
        if len(arg) != 1:
            raise PatternError(f"{where}: expected exactly one operator")
        ((name, inner),) = arg.items()
        here = f"{where}.{name}"
        if name not in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
            raise PatternError(f"{here}: not supported inside anything-but")
        texts = inner if isinstance(inner, list) else [inner]
        if not texts:
            raise PatternError(f"{here}: empty lists are not allowed")
        for text in texts:
            if name in ("prefix", "suffix") and _string(text, here) == "":
                raise PatternError(f"{here}: an empty {name} is not allowed")
        excluded = [_compile_operator({name: text}, where) for text in texts]
    else:
        values = arg if isinstance(arg, list) else [arg]
        strings = all(isinstance(v, str) for v in values)
        numbers = all(_is_number(v) and math.isfinite(v) for v in values)
        if not values or not (strings or numbers):
            raise PatternError(
                f"{where}: expected a string, a number, a list of only strings or only "
                "numbers, or a prefix/suffix/equals-ignore-case/wildcard object"
            )
        excluded = [_equals(v) for v in values]
    return lambda v: not any(test(v) for test in excluded)
