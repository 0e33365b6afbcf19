"""Per-container state: settings read once from the environment, AWS clients built once, the
policy loaded and validated once.

Nothing here runs at import time: clients are created on first use (moto can patch them, and a
cold start pays only for what the event needs). ``get_runtime()`` returns the container's
``Runtime``; ``reset()`` drops it (the local runner does so between functions, tests between
cases).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

from perimeter.policy import Policy, PolicyError, load_default_policy, load_policy_text

T = TypeVar("T")


class ConfigError(RuntimeError):
    """The function's environment is incomplete (the template or runner set it wrong)."""


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True, slots=True)
class Settings:
    region: str
    account_id: str | None
    audit_table: str | None
    idempotency_table: str | None
    topic_arn: str | None
    policy_parameter: str | None
    dry_run: bool
    self_roles: frozenset[str]
    idempotency_ttl_seconds: int = 86400
    #: the sweep's review state (PER-REV-1 first sightings); only SweepFunction has it
    review_table: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        region = e.get("AWS_REGION") or e.get("AWS_DEFAULT_REGION")
        if not region:
            raise ConfigError("AWS_REGION is not set")
        return cls(
            region=region,
            account_id=e.get("PERIMETER_ACCOUNT_ID") or None,
            audit_table=e.get("PERIMETER_AUDIT_TABLE") or None,
            idempotency_table=e.get("PERIMETER_IDEMPOTENCY_TABLE") or None,
            topic_arn=e.get("PERIMETER_TOPIC_ARN") or None,
            policy_parameter=e.get("PERIMETER_POLICY_PARAMETER") or None,
            dry_run=_flag(e.get("PERIMETER_DRY_RUN")),
            self_roles=frozenset(
                r.strip() for r in e.get("PERIMETER_SELF_ROLES", "").split(",") if r.strip()
            ),
            review_table=e.get("PERIMETER_REVIEW_TABLE") or None,
        )


class Runtime:
    """Clients and adapters for one container, built on first use."""

    def __init__(self, settings: Settings, *, session: Any | None = None) -> None:
        self.settings = settings
        self._session = session

    @cached_property
    def session(self) -> Any:
        if self._session is not None:
            return self._session
        import boto3

        return boto3.session.Session(region_name=self.settings.region)

    @cached_property
    def client_config(self) -> Any:
        from botocore.config import Config

        # Standard retry mode backs off on throttling; short timeouts keep a stuck call from
        # eating the Lambda's whole budget (the event is retried instead).
        # The sweep reads whole-region listings and is given longer (PERIMETER_READ_TIMEOUT).
        read_timeout = int(os.environ.get("PERIMETER_READ_TIMEOUT") or 10)
        return Config(
            retries={"mode": "standard", "max_attempts": 5},
            connect_timeout=3,
            read_timeout=read_timeout,
            tcp_keepalive=True,
        )

    def client(self, service: str) -> Any:
        client = self._clients.get(service)
        if client is None:
            client = self._clients[service] = self.session.client(service, config=self.client_config)
        return client

    @cached_property
    def _clients(self) -> dict[str, Any]:
        return {}

    @cached_property
    def policy(self) -> Policy:
        """Loaded once per container; raises ``PolicyError`` naming the bad field."""
        name = self.settings.policy_parameter
        if name:
            resp = self.client("ssm").get_parameter(Name=name)
            try:
                policy = load_policy_text(resp["Parameter"]["Value"])
            except PolicyError as exc:
                raise PolicyError(f"SSM parameter {name}: {exc}") from exc
        else:
            policy = load_default_policy()
        return policy.with_dry_run(self.settings.dry_run)

    @cached_property
    def ec2(self) -> Any:
        from perimeter.adapters.ec2 import Ec2Adapter

        return Ec2Adapter(self.client("ec2"))

    @cached_property
    def network(self) -> Any:
        from perimeter.adapters.ec2_network import Ec2NetworkAdapter

        return Ec2NetworkAdapter(self.client("ec2"))

    @cached_property
    def securityhub(self) -> Any:
        from perimeter.adapters.securityhub import SecurityHubAdapter

        return SecurityHubAdapter(self.client("securityhub"))

    @cached_property
    def sns(self) -> Any:
        from perimeter.adapters.sns import SnsAdapter

        if not self.settings.topic_arn:
            return None
        return SnsAdapter(self.client("sns"), self.settings.topic_arn)

    @cached_property
    def audit(self) -> Any:
        from perimeter.adapters.audit import AuditAdapter

        if not self.settings.audit_table:
            raise ConfigError(
                "PERIMETER_AUDIT_TABLE is not set: Perimeter never changes what it cannot record"
            )
        return AuditAdapter(self.client("dynamodb"), self.settings.audit_table)

    @cached_property
    def idempotency_store(self) -> Any:
        if not self.settings.idempotency_table:
            return None
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

        return DynamoDBPersistenceLayer(
            table_name=self.settings.idempotency_table, boto3_client=self.client("dynamodb")
        )

    def run_once(self, key: str | None, fn: Callable[[], T], context: Any = None) -> T:
        """Run ``fn`` at most once per CloudTrail event id (EventBridge delivers at least once).
        A duplicate returns the first run's result without calling ``fn``; a failed run leaves
        no record, so Lambda's retry runs it again."""
        store = self.idempotency_store
        if store is None or not key:
            return fn()
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function

        config = IdempotencyConfig(
            event_key_jmespath="event_id", expires_after_seconds=self.settings.idempotency_ttl_seconds
        )
        if context is not None and hasattr(context, "get_remaining_time_in_millis"):
            config.register_lambda_context(context)

        @idempotent_function(data_keyword_argument="request", persistence_store=store, config=config)
        def once(request: dict[str, Any]) -> Any:
            return fn()

        return once(request={"event_id": key})  # type: ignore[no-any-return]


_RUNTIME: Runtime | None = None


def get_runtime() -> Runtime:
    global _RUNTIME
    if _RUNTIME is None:
        _RUNTIME = Runtime(Settings.from_env())
    return _RUNTIME


def reset(runtime: Runtime | None = None) -> None:
    """Drop (or replace) the container's runtime: the next call reads the environment again."""
    global _RUNTIME
    _RUNTIME = runtime
