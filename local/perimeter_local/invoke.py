"""Run a function's handler in-process, with the environment the template gives it.

The same contract as ``sam local invoke`` (event in, handler's return value out), without a
container: the handler module is loaded from its ``CodeUri`` once (a warm container), its
environment is set from the template for the call, and the per-container runtime is reset so
each function sees its own settings. Routing decides which functions an event reaches by
matching the template's EventBridge patterns, as EventBridge would.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import logging
import os
import sys
import time
import traceback
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from perimeter.core.events import wrap_in_envelope

from perimeter_local.moto_gaps import serve_marketplace_listing
from perimeter_local.patterns import matches
from perimeter_local.template import FunctionSpec

serve_marketplace_listing()  # the local account is moto's: fill in what it lacks (moto_gaps.py)

_MODULES: dict[str, ModuleType] = {}
#: One warm runtime (clients, policy) per function, as one warm Lambda container each.
_RUNTIMES: dict[tuple[Any, ...], Any] = {}


@dataclass
class LocalContext:
    """The parts of Lambda's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    timeout_s: int
    started: float

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.started + self.timeout_s - time.monotonic()) * 1000))


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _load(spec: FunctionSpec) -> ModuleType:
    path = str(spec.module_path)
    module = _MODULES.get(path)
    if module is None:
        mod_spec = importlib.util.spec_from_file_location(f"perimeter_fn_{spec.logical_id}", path)
        if mod_spec is None or mod_spec.loader is None:
            raise FileNotFoundError(f"{spec.logical_id}: no handler module at {path}")
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)
        _MODULES[path] = module
    return module


def send_logs_to(stream: Any) -> None:
    """Handlers log structured JSON to stdout, as in Lambda; the runner keeps stdout for its
    own JSON answer and sends the logs elsewhere."""
    for name in ("perimeter",):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler):
                # Not setStream(): it flushes the old stream, which a test harness may have closed.
                handler.acquire()
                try:
                    handler.stream = stream
                finally:
                    handler.release()


def invoke(
    spec: FunctionSpec, event: Mapping[str, Any], *, account: str, region: str, log_stream: Any = None
) -> dict[str, Any]:
    """Run one function on one event. Never raises for the handler's own errors: they are
    reported as ``ok: false`` with the error, as Lambda would report a failed invocation."""
    env = {
        **spec.environment,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_LAMBDA_FUNCTION_NAME": spec.function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
    }
    context = LocalContext(
        function_name=spec.function_name,
        memory_limit_in_mb=spec.memory,
        invoked_function_arn=f"arn:aws:lambda:{region}:{account}:function:{spec.function_name}",
        aws_request_id=str(uuid.uuid4()),
        timeout_s=spec.timeout,
        started=time.monotonic(),
    )
    from perimeter.core import runtime

    # A warm container belongs to one function, one account endpoint and one configuration.
    warm_key = (spec.logical_id, os.environ.get("AWS_ENDPOINT_URL"), tuple(sorted(env.items())))
    with _environment(env), contextlib.redirect_stdout(log_stream or sys.stderr):
        runtime.reset(_RUNTIMES.get(warm_key))
        started = time.perf_counter()
        try:
            module = _load(spec)
            send_logs_to(log_stream or sys.stderr)
            result = getattr(module, spec.attribute)(copy.deepcopy(dict(event)), context)
        # Reported, not swallowed: as Lambda reports a failed invocation; the CLI exits non-zero.
        except Exception as exc:  # noqa: BLE001
            return {
                "function": spec.logical_id,
                "ok": False,
                "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=6),
                "ms": round((time.perf_counter() - started) * 1000, 1),
            }
        finally:
            if runtime._RUNTIME is not None:
                _RUNTIMES[warm_key] = runtime._RUNTIME
            runtime.reset()
    return {
        "function": spec.logical_id,
        "ok": True,
        "result": result,
        "ms": round((time.perf_counter() - started) * 1000, 1),
    }


def forget_containers() -> None:
    """Drop the warm runtimes (a new account or endpoint means new containers)."""
    _RUNTIMES.clear()


def route(functions: list[FunctionSpec], event: Mapping[str, Any]) -> list[tuple[FunctionSpec, str]]:
    """The (function, rule) pairs whose EventBridge pattern matches the event."""
    envelope = wrap_in_envelope(event)
    hits = []
    for spec in functions:
        for rule in spec.rules:
            if matches(rule.pattern, envelope):
                hits.append((spec, rule.name))
                break
    return hits
