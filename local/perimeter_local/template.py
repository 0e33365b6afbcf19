"""Read ``template.yaml`` the way the runner needs it: functions, their environment, their rules.

``sam local invoke`` resolves a function's environment from the template; so does this, for the
intrinsics the template uses (Ref, Fn::Sub, Fn::GetAtt, Fn::Join, Fn::If and conditions). A
resource's physical id comes from ``physical`` (filled by ``account.ensure_resources``), as
CloudFormation would fill it at deploy time.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_TAGS = {
    "Ref": "Ref",
    "Sub": "Fn::Sub",
    "GetAtt": "Fn::GetAtt",
    "Join": "Fn::Join",
    "If": "Fn::If",
    "Equals": "Fn::Equals",
    "Not": "Fn::Not",
    "And": "Fn::And",
    "Or": "Fn::Or",
    "Select": "Fn::Select",
    "Split": "Fn::Split",
    "Condition": "Condition",
    "FindInMap": "Fn::FindInMap",
    "ImportValue": "Fn::ImportValue",
    "GetAZs": "Fn::GetAZs",
    "Base64": "Fn::Base64",
}


class _Loader(yaml.SafeLoader):
    pass


def _construct(tag: str):  # type: ignore[no-untyped-def]
    def build(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "Fn::GetAtt" and isinstance(value, str):
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {tag: value}

    return build


for _short, _long in _TAGS.items():
    _Loader.add_constructor(f"!{_short}", _construct(_long))


class TemplateError(ValueError):
    """The template uses something the runner cannot resolve."""


#: Parsed templates by (path, mtime): parsing the YAML costs ~1 s on a busy machine, and one
#: process (the tests, a replay) reads the same template many times. Callers get a copy.
_PARSED: dict[tuple[str, int], dict[str, Any]] = {}


def load_template(path: str | Path) -> dict[str, Any]:
    key = (str(Path(path).resolve()), Path(path).stat().st_mtime_ns)
    doc = _PARSED.get(key)
    if doc is None:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.load(fh, Loader=_Loader)
        if not isinstance(doc, dict) or "Resources" not in doc:
            raise TemplateError(f"{path}: not a CloudFormation/SAM template")
        _PARSED[key] = doc
    return copy.deepcopy(doc)


@dataclass
class Resolver:
    """Evaluates intrinsics against parameters, pseudo parameters and physical resources."""

    template: Mapping[str, Any]
    parameters: Mapping[str, str]
    pseudo: Mapping[str, str]
    #: logical id -> {"Ref": ..., "Arn": ..., other attributes}
    physical: dict[str, dict[str, str]] = field(default_factory=dict)

    def param(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return str(self.parameters[name])
        spec = self.template.get("Parameters", {}).get(name)
        if spec is None:
            raise TemplateError(f"unknown parameter {name}")
        return str(spec.get("Default", ""))

    def condition(self, name: str) -> bool:
        cond = self.template.get("Conditions", {}).get(name)
        if cond is None:
            raise TemplateError(f"unknown condition {name}")
        return bool(self.resolve(cond))

    def ref(self, name: str) -> str:
        if name in self.pseudo or name in self.template.get("Parameters", {}) or name in self.parameters:
            return self.param(name)
        if name in self.physical:
            return self.physical[name]["Ref"]
        raise TemplateError(f"Ref {name}: resource not created in this account")

    def get_att(self, name: str, attr: str) -> str:
        if name not in self.physical or attr not in self.physical[name]:
            raise TemplateError(f"GetAtt {name}.{attr}: not known for this account")
        return self.physical[name][attr]

    def resolve(self, value: Any) -> Any:  # noqa: C901 - one branch per intrinsic
        if isinstance(value, list):
            return [v for v in (self.resolve(v) for v in value) if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return _NO_VALUE if arg == "AWS::NoValue" else self.ref(arg)
            if key == "Fn::GetAtt":
                name, attr = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return self.get_att(name, attr)
            if key == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
                return self._sub(text, extra)
            if key == "Fn::Join":
                sep, parts = arg
                return sep.join(str(p) for p in self.resolve(parts))
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.condition(name) else no)
            if key == "Fn::Equals":
                a, b = self.resolve(arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(arg))
            if key == "Fn::Or":
                return any(self.resolve(arg))
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(index)]
            if key == "Fn::Split":
                sep, text = arg
                return str(self.resolve(text)).split(sep)
            if key.startswith("Fn::"):
                raise TemplateError(f"{key} is not supported by the local runner")
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in value.items()) if v is not _NO_VALUE}

    def _sub(self, text: str, extra: Mapping[str, Any]) -> str:
        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in extra:
                return str(extra[name])
            if "." in name:
                res, attr = name.split(".", 1)
                return self.get_att(res, attr)
            return self.ref(name)

        return re.sub(r"\$\{([^}]+)\}", repl, text)


_NO_VALUE = object()


@dataclass(frozen=True)
class RuleSpec:
    name: str
    pattern: Mapping[str, Any]


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    environment: Mapping[str, str]
    rules: tuple[RuleSpec, ...]
    function_name: str
    timeout: int
    memory: int
    #: schedule expressions (``Type: Schedule`` events): the sweep runs on one, not on a rule
    schedules: tuple[str, ...] = ()

    @property
    def module_path(self) -> Path:
        module, _, _ = self.handler.rpartition(".")
        return self.code_uri / (module.replace(".", "/") + ".py")

    @property
    def attribute(self) -> str:
        return self.handler.rpartition(".")[2]


def functions(template: Mapping[str, Any], resolver: Resolver, root: Path) -> list[FunctionSpec]:
    """Every ``AWS::Serverless::Function`` with its resolved environment and EventBridge rules."""
    glob = template.get("Globals", {}).get("Function", {})
    out = []
    for logical_id, res in template["Resources"].items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        props = {**glob, **res.get("Properties", {})}
        env = dict(glob.get("Environment", {}).get("Variables", {}))
        env.update(res.get("Properties", {}).get("Environment", {}).get("Variables", {}))
        resolved_env = {k: str(v) for k, v in resolver.resolve(env).items()}
        rules = []
        schedules = []
        for event_id, ev in (props.get("Events") or {}).items():
            if ev.get("Type") in ("Schedule", "ScheduleV2"):
                schedules.append(str(resolver.resolve(ev.get("Properties", {}).get("Schedule"))))
                continue
            if ev.get("Type") not in ("EventBridgeRule", "CloudWatchEvent"):
                continue
            p = ev.get("Properties", {})
            name = resolver.resolve(p.get("RuleName", f"{logical_id}{event_id}"))
            rules.append(RuleSpec(str(name), resolver.resolve(p["Pattern"])))
        name = props.get("FunctionName")
        out.append(
            FunctionSpec(
                logical_id=logical_id,
                code_uri=root / str(props["CodeUri"]),
                handler=str(props["Handler"]),
                environment=resolved_env,
                rules=tuple(rules),
                function_name=str(resolver.resolve(name)) if name else logical_id,
                timeout=int(props.get("Timeout", 3)),
                memory=int(props.get("MemorySize", 128)),
                schedules=tuple(schedules),
            )
        )
    return out
