"""A moto account deployed as ``template.yaml`` says, every Perimeter function runnable in it,
and the botocore hooks that count and break the calls those functions make.

Why one harness for every function: the safety guarantees (faults survived, dry run writes
nothing, bad input writes nothing) are claims about *every* handler, so they are tested through
one door. The functions get exactly the environment the template gives them (tables, topic,
self roles, dry-run switch); their Runtime is built on a boto3 Session that carries the hooks:

- ``before-send`` may answer an HTTP throttling error: it goes through botocore's retries, as a
  real throttle does;
- ``before-call`` may raise a ``ClientError``: a failure that outlasted the retries;
- ``before-call`` may answer a canned response (a ``FailedFindings`` batch);
- ``after-call`` may raise after a write went through: the process dies with the write done.

Every call is recorded as ``service.Operation``; anything not ``Describe*``/``Get*``/``List*``
(or another read) is a write. Nothing here knows Perimeter's internal function names.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import perimeter.core.runtime as runtime
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.core.botocore_stubber import MockRawResponse
from perimeter.core.events import wrap_in_envelope
from perimeter_local.account import prepare
from perimeter_local.cloudtrail import record
from perimeter_local.template import FunctionSpec, functions

from tests.safety.moto_speed import fast_moto

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION = "us-east-1"
READ_PREFIXES = ("Describe", "Get", "List", "BatchGet", "Scan", "Query", "Search", "Lookup")
#: The services whose state Perimeter changes on a user's behalf (not its own reporting).
#: botocore names CloudWatch Logs ``cloudwatch-logs`` in its events (the hooks' ``service.Operation``).
RESOURCE_SERVICES = ("ec2", "sagemaker", "bedrock", "iam", "logs", "cloudwatch-logs")
FUNCTION_IDS = (
    "SgGuardFunction",
    "DefaultSgGuardFunction",
    "ModelPostureFunction",
    "IamGuardFunction",
    "FlowLogGuardFunction",
    "NetGuardFunction",
)


def is_write(op: str) -> bool:
    """``service.Operation`` -> True when the operation changes something."""
    name = op.split(".", 1)[1]
    return not name.startswith(READ_PREFIXES)


class Crash(Exception):
    """The invocation failed after a write (an error Lambda reports, then retries)."""


class Killed(BaseException):
    """The process died after a write (a Lambda timeout or OOM: no ``except``, no cleanup)."""


class Clock:
    """Lambda's retries come a minute or more after a failure; the only code that compares
    clocks across invocations is the once-only claim (``perimeter.core.once``, and Powertools'
    idempotency layer: an in-progress claim expires when the Lambda's time would have run out).
    Their clock is this one: the harness moves it forward between attempts as Lambda's retry
    schedule would, instead of sleeping."""

    offset = 0.0

    @classmethod
    def advance(cls, seconds: float) -> None:
        cls.offset += seconds

    @classmethod
    def install(cls, monkeypatch: Any) -> None:
        import datetime as real
        import types

        from aws_lambda_powertools.utilities.idempotency.persistence import base, datarecord, dynamodb

        class Shifted(real.datetime):
            @classmethod
            def now(cls_, tz: Any = None) -> Any:
                return real.datetime.now(tz) + real.timedelta(seconds=Clock.offset)

        shim = types.SimpleNamespace(**{k: getattr(real, k) for k in dir(real) if not k.startswith("__")})
        shim.datetime = Shifted
        for module in (base, datarecord, dynamodb):
            monkeypatch.setattr(module, "dt", shim)
        # Perimeter's own once-only claim (perimeter.core.once) compares epoch seconds: the same clock.
        import time as real_time

        import perimeter.core.once as once_module

        clock = types.SimpleNamespace(
            **{k: getattr(real_time, k) for k in dir(real_time) if not k.startswith("__")}
        )
        clock.time = lambda: real_time.time() + Clock.offset
        monkeypatch.setattr(once_module, "time", clock)
        cls.offset = 0.0


#: Lambda's asynchronous retries: about one minute, then two minutes after a failure.
RETRY_DELAYS = (60.0, 120.0)


@dataclass
class Context:
    """Lambda's context; ``remaining_ms`` small means the timeout is about to strike."""

    function_name: str
    remaining_ms: int = 60_000
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class Plan:
    """The faults of one invocation. All counters are per invocation."""

    #: answer HTTP 400 Throttling to the first ``throttle_first`` attempts of *every* request
    throttle_first: int = 0
    #: operation ("service.Operation") -> error code raised at its n-th call (1-based)
    fail: dict[str, tuple[int, str]] = field(default_factory=dict)
    #: raise after the n-th write went through
    crash_after_write: int | None = None
    crash_kind: type[BaseException] = Crash
    #: BatchImportFindings answers every finding as failed, this many times
    reject_findings: int = 0
    #: run this (out-of-band change to AWS) right after the n-th call of an operation
    after: dict[str, tuple[int, Callable[[], None]]] = field(default_factory=dict)


class Hooks:
    """Counts and breaks the calls made by the Runtime's clients."""

    def __init__(self, session: Any) -> None:
        self.calls: list[str] = []
        self.plan = Plan()
        self._attempts: dict[int, int] = {}
        self._writes = 0
        self._counts: dict[str, int] = {}
        self.throttled = 0
        session.events.register("before-call", self._before_call)
        # first: moto answers every request from its own before-send handler
        session.events.register_first("before-send", self._before_send)
        session.events.register("after-call", self._after_call)

    def arm(self, plan: Plan | None) -> None:
        self.plan = plan or Plan()
        self._writes = 0
        self._counts = {}
        self._attempts = {}

    @staticmethod
    def _op(event_name: str) -> str:
        parts = event_name.split(".")
        return f"{parts[1]}.{parts[2]}"

    def _before_call(self, event_name: str, params: Any = None, **_: Any) -> Any:
        op = self._op(event_name)
        self.calls.append(op)
        n = self._counts[op] = self._counts.get(op, 0) + 1
        failing = self.plan.fail.get(op)
        if failing and failing[0] == n:
            error: dict[str, Any] = {"Error": {"Code": failing[1], "Message": "injected"}}
            if failing[1] == "TransactionCanceledException":
                # how DynamoDB answers a transaction whose first item's condition failed
                error["CancellationReasons"] = [{"Code": "ConditionalCheckFailed"}, {"Code": "None"}]
            raise ClientError(error, op.split(".")[1])  # type: ignore[arg-type]
        if op == "securityhub.BatchImportFindings" and self.plan.reject_findings > 0:
            self.plan.reject_findings -= 1
            findings = (params or {}).get("body", {})
            ids = [f.get("Id") for f in findings.get("Findings", [])] if isinstance(findings, dict) else []
            ids = ids or ["unknown"]
            parsed = {
                "FailedCount": len(ids),
                "SuccessCount": 0,
                "FailedFindings": [
                    {"Id": i, "ErrorCode": "InvalidInput", "ErrorMessage": "injected"} for i in ids
                ],
            }
            return AWSResponse("https://securityhub", 200, {}, MockRawResponse(b"{}")), parsed
        if op == "securityhub.BatchUpdateFindings":
            # moto lacks it (FACTS.md): answered on moto's stored findings by the local runner's
            # extension, which validates the request and its answer against botocore's model
            from perimeter_local.moto_ext import batch_update_findings

            body = (params or {}).get("body") or b"{}"
            parsed = batch_update_findings(
                REGION, json.loads(body) if isinstance(body, bytes | str) else body
            )
            return AWSResponse("https://securityhub", 200, {}, MockRawResponse(b"{}")), parsed
        return None

    def _before_send(self, request: Any, **_: Any) -> AWSResponse | None:
        if self.plan.throttle_first <= 0:
            return None
        # botocore numbers the attempts of one call in this header ("attempt=2; max=5")
        header = request.headers.get("amz-sdk-request", b"attempt=1")
        header = header.decode() if isinstance(header, bytes) else str(header)
        n = int(header.split(";")[0].split("=")[1])
        if n > self.plan.throttle_first:
            return None
        self.throttled += 1
        url = request.url
        # botocore lets every before-send handler run and keeps the first answer; moto's
        # handler comes after this one. A throttled request must not reach AWS at all, so it
        # is pointed at a host moto does not serve (nothing is sent: this answer is used).
        request.url = "https://throttled.invalid/"
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
        headers = {"x-amzn-ErrorType": "ThrottlingException", "Content-Type": "application/x-amz-json-1.0"}
        host = url.split("//", 1)[-1].split(".", 1)[0]
        if host == "ec2":
            body = (
                b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit "
                b"exceeded.</Message></Error></Errors><RequestID>r</RequestID></Response>"
            )
            headers = {}
        elif host in ("iam", "sns", "sqs", "sts"):  # the query protocol's error shape
            body = (
                b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate "
                b"exceeded</Message></Error><RequestId>r</RequestId></ErrorResponse>"
            )
            headers = {"Content-Type": "text/xml"}
        return AWSResponse(url, 503 if host == "ec2" else 400, headers, MockRawResponse(body))

    def _after_call(self, event_name: str, **_: Any) -> None:
        op = self._op(event_name)
        then = self.plan.after.get(op)
        if then and then[0] == self._counts.get(op):
            then[1]()
        if not is_write(op):
            return
        self._writes += 1
        if self.plan.crash_after_write == self._writes:
            raise self.plan.crash_kind(f"injected: died after write #{self._writes} ({op})")

    def take(self) -> list[str]:
        out, self.calls[:] = list(self.calls), []
        return out


def _load_module(spec: FunctionSpec) -> Any:
    mod_spec = importlib.util.spec_from_file_location(f"safety_{spec.logical_id}", spec.module_path)
    assert mod_spec and mod_spec.loader
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    return module


_MODULES: dict[str, Any] = {}

BASE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
}


@dataclass
class Outcome:
    ok: bool
    result: Any = None
    error: BaseException | None = None
    attempts: int = 1
    calls: list[str] = field(default_factory=list)

    @property
    def writes(self) -> list[str]:
        return [c for c in self.calls if is_write(c)]


#: One botocore loader for every session the harness makes. A loader only reads and caches the
#: service models (JSON files); a fresh one per session re-parsed them for every account, which was
#: most of the cost of a crash point. Clients, credentials and event hooks stay per session.
_LOADER = botocore.loaders.create_loader()


def new_session() -> Any:
    """A boto3 session of its own (its own event hooks) that shares the parsed service models."""
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER)
    return boto3.session.Session(botocore_session=core, region_name=REGION)


class UserClients:
    """The account's user side (the scenes, the snapshot, template deployment): one client per
    service, built on first use. A client holds no state of the account it talks to."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.region_name = session.region_name
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        found = self._clients.get(service)
        if found is None:
            found = self._clients[service] = self.session.client(service)
        return found


class World:
    """One deployed stack in a moto account."""

    def __init__(self, session: Any, *, dry_run: bool = False) -> None:
        self.session = session
        self.user = UserClients(session)
        params = {"DryRun": "true" if dry_run else "false"}
        template, resolver = prepare(self.user, ROOT / "template.yaml", parameters=params)
        self.specs = {s.logical_id: s for s in functions(template, resolver, ROOT)}
        self.resolver = resolver
        self.run_session = new_session()
        self.hooks = Hooks(self.run_session)
        self._warm: dict[str, runtime.Runtime] = {}
        self.dlq: list[dict[str, Any]] = []
        self.dry_run = dry_run

    # --- running functions -----------------------------------------------------------------
    def env_of(self, function_id: str) -> dict[str, str]:
        spec = self.specs[function_id]
        return {**spec.environment, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}

    def _runtime(self, function_id: str) -> runtime.Runtime:
        rt = self._warm.get(function_id)
        if rt is None:
            saved = {k: os.environ.get(k) for k in self.env_of(function_id)}
            os.environ.update(self.env_of(function_id))
            try:
                rt = runtime.Runtime(runtime.Settings.from_env(), session=self.run_session)
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
            self._warm[function_id] = rt
        return rt

    def invoke_once(
        self,
        function_id: str,
        event: Mapping[str, Any],
        plan: Plan | None = None,
        *,
        remaining_ms: int = 60_000,
        fresh: bool = False,
    ) -> Outcome:
        """One invocation. A handler error is returned, not raised (as Lambda records it).
        The handler gets its own JSON copy of ``event`` (Lambda's deserialised payload), unless
        ``fresh`` says the caller made one for this call alone (the fuzz's events can be tens
        of megabytes: one round trip, not two)."""
        spec = self.specs[function_id]
        module = _MODULES.get(function_id)
        if module is None:
            module = _MODULES[function_id] = _load_module(spec)
        env = self.env_of(function_id)
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        self.hooks.arm(plan)
        self.hooks.take()
        runtime.reset(self._runtime(function_id))
        try:
            payload = event if fresh else json.loads(json.dumps(event))
            result = module.lambda_handler(payload, Context(spec.function_name, remaining_ms))
        except Exception as exc:  # noqa: BLE001 - recorded as Lambda records a failed invocation
            return Outcome(False, error=exc, calls=self.hooks.take())
        except Killed as exc:
            self._warm.pop(function_id, None)  # the container is gone
            return Outcome(False, error=exc, calls=self.hooks.take())
        finally:
            self.hooks.arm(None)
            runtime.reset()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return Outcome(True, result=result, calls=self.hooks.take())

    def deliver(
        self,
        function_id: str,
        event: Mapping[str, Any],
        plans: list[Plan | None] | None = None,
        *,
        retries: int = 2,
    ) -> Outcome:
        """Lambda's asynchronous invocation: the first attempt and up to ``retries`` retries
        (the template's ``MaximumRetryAttempts``); then the OnFailure destination (the DLQ)
        receives the event. ``plans[i]`` are the faults of attempt i. A killed attempt dies when
        its time runs out: the clock moves by the function's timeout, then by the retry delay."""
        plans = list(plans or [])
        calls: list[str] = []
        outcome = Outcome(False)
        timeout = float(self.specs[function_id].timeout)
        for attempt in range(retries + 1):
            if attempt:
                Clock.advance(RETRY_DELAYS[min(attempt - 1, len(RETRY_DELAYS) - 1)])
            plan = plans[attempt] if attempt < len(plans) else None
            killed = plan is not None and plan.crash_kind is Killed and plan.crash_after_write is not None
            outcome = self.invoke_once(function_id, event, plan, remaining_ms=int(timeout * 1000))
            calls += outcome.calls
            if outcome.ok:
                break
            if killed and isinstance(outcome.error, Killed):
                Clock.advance(timeout)  # the process died when its time ran out
        outcome.attempts = attempt + 1
        outcome.calls = calls
        if not outcome.ok:
            # Lambda's OnFailure record for an async invocation carries the event itself.
            self.dlq.append(
                {
                    "requestContext": {"functionArn": function_id, "condition": "RetriesExhausted"},
                    "responseContext": {"functionError": "Unhandled"},
                    "responsePayload": {"errorMessage": str(outcome.error)},
                    "requestPayload": json.loads(json.dumps(event)),
                }
            )
        return outcome

    def redrive(self) -> list[Outcome]:
        """Send every DLQ record's event back to its function (what an operator's redrive does)."""
        pending, self.dlq = self.dlq, []
        Clock.advance(3600)  # an operator redrives later, not within the minute
        return [self.deliver(r["requestContext"]["functionArn"], r["requestPayload"]) for r in pending]

    # --- events --------------------------------------------------------------------------
    def event(
        self,
        name: str,
        source: str,
        request: Mapping[str, Any],
        response: Mapping[str, Any] | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        return wrap_in_envelope(record(name, source, request, response, account=ACCOUNT, region=REGION, **kw))

    def own_role_arn(self, function_id: str) -> str:
        role = self.env_of(function_id)["PERIMETER_SELF_ROLES"].split(",")[0]
        return f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/perimeter"

    # --- what AWS holds afterwards -----------------------------------------------------------
    def client(self, service: str) -> Any:
        return self.user.client(service)

    def table(self, logical_id: str) -> str:
        return str(self.resolver.resolve({"Ref": logical_id}))

    def audit(self) -> list[dict[str, Any]]:
        ddb = self.client("dynamodb")
        name = self.env_of("SgGuardFunction")["PERIMETER_AUDIT_TABLE"]
        items = []
        for page in ddb.get_paginator("scan").paginate(TableName=name):
            items += [json.loads(i["body"]["S"]) for i in page["Items"]]
        return items

    def findings(self) -> list[dict[str, Any]]:
        hub = self.client("securityhub")
        out: list[dict[str, Any]] = []
        token = None
        while True:
            kw = {"MaxResults": 100, **({"NextToken": token} if token else {})}
            resp = hub.get_findings(**kw)
            out += resp["Findings"]
            token = resp.get("NextToken")
            if not token or not resp["Findings"]:
                return out

    def notifications(self) -> int:
        """Messages SNS accepted on the findings topic, counted at moto's backend (no
        subscriber needed: moto keeps what was published in memory, per topic)."""
        from moto.sns.models import sns_backends

        arn = self.env_of("SgGuardFunction")["PERIMETER_TOPIC_ARN"]
        backend = sns_backends[ACCOUNT][REGION]
        return int(getattr(backend.topics[arn], "sent_notifications", []).__len__())


@contextlib.contextmanager
def deployed(*, dry_run: bool = False) -> Iterator[World]:
    """A fresh moto account with the stack's resources; the caller sets BASE_ENV."""
    with mock_aws(), fast_moto():
        yield World(new_session(), dry_run=dry_run)
    runtime.reset()
