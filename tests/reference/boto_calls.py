"""Every boto3 call the perimeter package makes, read from its source (no AWS, no moto).

moto and Stubber prove the calls a test happens to run; this finds all of them, whether or
not a test reaches them or moto serves them (Bedrock), so each can be held to a botocore
service model:

- a client is a ``<anything>.client("<service>")`` expression; an adapter's client is the
  constructor argument its callers pass as such an expression (or a ``lambda`` returning one),
  stored in ``__init__`` as ``self._<name>``;
- a call is ``<client>.<method>(...)``, a paginator is ``<client>.get_paginator("<op>")``, and
  ``.paginate(...)`` on a name bound to one is a call of that operation.

``check`` validates each call against a botocore ``Loader`` (the installed botocore, or the
one a ``sam build`` put into the layer): the method is an operation of the service, the
paginator exists, every keyword is a member of the input shape, and literal values pass
botocore's ``ParamValidator`` (types, enums, lengths).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore import xform_name
from botocore.loaders import Loader
from botocore.model import ServiceModel
from botocore.validate import ParamValidator

#: botocore's parameter aliases (botocore.handlers._add_parameter_aliases): the name a caller
#: writes -> the model's member it stands for, per service.
ALIASES = {"ec2": {"Filters": "Filter"}, "logs": {"fromTime": "from"}}

#: Methods on a client that are not API operations.
CLIENT_HELPERS = {"get_paginator", "get_waiter", "can_paginate", "close", "exceptions", "meta"}


@dataclass(frozen=True)
class Call:
    where: str
    service: str
    method: str  # snake_case, as called
    paginated: bool
    keywords: tuple[str, ...]
    literals: tuple[tuple[str, Any], ...]
    has_star_kwargs: bool


@dataclass
class _Module:
    path: Path
    tree: ast.Module
    classes: dict[str, ast.ClassDef] = field(default_factory=dict)


def _client_service(node: ast.AST | None) -> str | None:
    """``x.client("ec2")`` -> "ec2"; ``lambda: x.client("logs")`` -> "logs"."""
    if isinstance(node, ast.Lambda):
        node = node.body
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "client"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        return node.args[0].value
    return None


def _literal(node: ast.AST) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _constructor_args(modules: Iterable[_Module], classes: set[str]) -> dict[tuple[str, int | str], str]:
    """(class name, argument position or keyword) -> service, from every constructor call."""
    by_param: dict[tuple[str, int | str], str] = {}
    for m in modules:
        for node in ast.walk(m.tree):
            if not (
                isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in classes
            ):
                continue
            args: list[tuple[int | str, ast.AST]] = [*enumerate(node.args)]
            args += [(kw.arg, kw.value) for kw in node.keywords if kw.arg]
            for key, value in args:
                if svc := _client_service(value):
                    by_param[(node.func.id, key)] = svc
    return by_param


def _bindings(modules: list[_Module]) -> dict[tuple[str, str], str]:
    """(class name, self attribute) -> service, from constructor calls anywhere."""
    classes = {name: cls for m in modules for name, cls in m.classes.items()}
    by_param = _constructor_args(modules, set(classes))
    out: dict[tuple[str, str], str] = {}
    for name, cls in classes.items():
        init = next((f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
        if init is None:
            continue
        params = [a.arg for a in init.args.args[1:]]
        for stmt in ast.walk(init):
            if (
                isinstance(stmt, ast.Assign)
                and isinstance(stmt.value, ast.Name)
                and stmt.value.id in params
                and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Attribute)
                and isinstance(stmt.targets[0].value, ast.Name)
                and stmt.targets[0].value.id == "self"
            ):
                param = stmt.value.id
                svc = by_param.get((name, params.index(param))) or by_param.get((name, param))
                if svc:
                    out[(name, stmt.targets[0].attr)] = svc
    return out


def _self_client(node: ast.AST, cls: str | None, bindings: dict[tuple[str, str], str]) -> str | None:
    """``self._ec2`` or ``self._logs()`` inside a bound class -> its service."""
    if isinstance(node, ast.Call) and not node.args:
        node = node.func
    if (
        cls
        and isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    ):
        return bindings.get((cls, node.attr))
    return None


class _Finder(ast.NodeVisitor):
    def __init__(self, module: _Module, bindings: dict[tuple[str, str], str]) -> None:
        self.module = module
        self.bindings = bindings
        self.cls: str | None = None
        self.names: dict[str, str] = {}  # local name -> service (a client)
        self.paginators: dict[str, tuple[str, str]] = {}  # local name -> (service, op)
        self.calls: list[Call] = []

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        outer, self.cls = self.cls, node.name
        self.generic_visit(node)
        self.cls = outer

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        saved = (dict(self.names), dict(self.paginators))
        self.generic_visit(node)
        self.names, self.paginators = saved

    def _service_of(self, node: ast.AST) -> str | None:
        return (
            _client_service(node)
            or _self_client(node, self.cls, self.bindings)
            or (self.names.get(node.id) if isinstance(node, ast.Name) else None)
        )

    def _paginator_of(self, node: ast.AST) -> tuple[str, str] | None:
        if isinstance(node, ast.Name):
            return self.paginators.get(node.id)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get_paginator"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            svc = self._service_of(node.func.value)
            return (svc, str(node.args[0].value)) if svc else None
        return None

    def visit_Assign(self, node: ast.Assign) -> None:
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target = node.targets[0].id
            if svc := self._service_of(node.value):
                self.names[target] = svc
            elif pag := self._paginator_of(node.value):
                self.paginators[target] = pag
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute):
            where = f"{self.module.path.name}:{node.lineno}"
            keywords = tuple(k.arg for k in node.keywords if k.arg)
            literals = tuple(
                (k.arg, value) for k in node.keywords if k.arg for ok, value in [_literal(k.value)] if ok
            )
            star = any(k.arg is None for k in node.keywords)
            if func.attr == "get_paginator" and (pag := self._paginator_of(node)):
                self.calls.append(Call(where, pag[0], pag[1], True, (), (), False))
            elif func.attr == "paginate" and (pag := self._paginator_of(func.value)):
                self.calls.append(Call(where, pag[0], pag[1], True, keywords, literals, star))
            elif func.attr not in CLIENT_HELPERS and (svc := self._service_of(func.value)):
                self.calls.append(Call(where, svc, func.attr, False, keywords, literals, star))
        self.generic_visit(node)


def find_calls(package: Path) -> list[Call]:
    modules = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        m = _Module(path, tree)
        m.classes = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
        modules.append(m)
    bindings = _bindings(modules)
    calls: list[Call] = []
    for m in modules:
        finder = _Finder(m, bindings)
        finder.visit(m.tree)
        calls.extend(finder.calls)
    return calls


def check(calls: Iterable[Call], loader: Loader) -> list[str]:
    problems: list[str] = []
    models: dict[str, tuple[ServiceModel, dict[str, str], dict[str, Any]]] = {}
    for call in calls:
        if call.service not in models:
            model = ServiceModel(loader.load_service_model(call.service, "service-2"), call.service)
            ops = {xform_name(op): op for op in model.operation_names}
            try:
                pages = loader.load_service_model(call.service, "paginators-1").get("pagination", {})
            except Exception:  # noqa: BLE001 - a service without paginators
                pages = {}
            models[call.service] = (model, ops, pages)
        model, ops, pages = models[call.service]
        op_name = ops.get(call.method)
        if op_name is None:
            problems.append(f"{call.where}: {call.service} has no operation {call.method}")
            continue
        if call.paginated and op_name not in pages:
            problems.append(f"{call.where}: {call.service} {op_name} cannot be paginated")
            continue
        shape = model.operation_model(op_name).input_shape
        members = set(shape.members) if shape else set()
        aliases = {a: m for a, m in ALIASES.get(call.service, {}).items() if m in members}
        allowed = members | set(aliases) | ({"PaginationConfig"} if call.paginated else set())
        for kw in call.keywords:
            if kw not in allowed:
                problems.append(f"{call.where}: {op_name} has no parameter {kw}")
        literal = {aliases.get(k, k): v for k, v in call.literals if aliases.get(k, k) in members}
        if shape is not None and literal:
            report = ParamValidator().validate(literal, shape)
            for error in report._errors:
                kind, name = error[0], error[1]
                # Parameters the call computes at run time are not in ``literal``.
                if kind == "missing required field" and name not in literal:
                    continue
                problems.append(f"{call.where}: {op_name} {kind} {error[1:]}")
    return problems
