"""Per-container state: settings read once from the environment, AWS clients built once, the
policy loaded and validated once.

Nothing here runs at import time by itself. In Lambda, a handler module calls
``init_container(services)`` as it is imported: during the init phase (Lambda sets
``AWS_LAMBDA_INITIALIZATION_TYPE``) it builds the clients the function uses and loads the
packaged policy, so the first event does not pay for them; elsewhere (tests, the local runner)
it does nothing and clients are built on first use, where moto can patch them.
``get_runtime()`` returns the container's ``Runtime``; ``reset()`` drops it (the local runner
does so between functions, tests between cases).

SnapStart (``SnapStart: ApplyOn: PublishedVersions`` in the template): Lambda snapshots the
container after that init, so a restored container skips the imports, the loading of each
service's model, the building of the clients and the policy's validation. What must not outlive
the snapshot is refreshed by the after-restore hook (``snapshot_restore_py``, shipped in Lambda's
Python runtimes): the clients are rebuilt from a new botocore session that shares the old one's
loaded models (fresh credentials, no pooled connection from before the snapshot), the VPC facts
cache is dropped (its clock is not the restored one's), and a policy kept in SSM is read on
first use after the restore, never frozen into the snapshot.

Threads: the container's pool (``Runtime.pool``) is started in the init phase too, every thread
of it (``start_pool``), so no invocation pays for starting one. Lambda's documentation describes
the snapshot as the memory and disk state of the initialized environment and promises nothing
about threads; the after-restore hook does not rely on them: the restored runtime starts a pool
of its own, and the snapshot's pool is told to stop (its threads, idle on the pool's queue, exit
if they run at all).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from perimeter.policy import Policy, PolicyError, load_default_policy, load_policy_text

if TYPE_CHECKING:
    from concurrent.futures import Future

T = TypeVar("T")
MODELS = Path(__file__).resolve().parent.parent / "models"
#: threads of the container's pool: the event path's parallel writes and side reads, the
#: sweep's listings, revokes and finding batches (the sweep's revokes in flight at once)
POOL_WORKERS = 8


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
    #: the findings ledger (CreatedAt/FirstObservedAt of SG findings); SgGuard has it
    findings_table: str | None = None
    #: the undo's exemptions (issue 11); SgGuard, DefaultSgGuard, Sweep and Undo have it
    exemptions_table: str | None = None
    #: how long the undo exempts what it restored (days)
    exempt_days: int = 7

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
            findings_table=e.get("PERIMETER_FINDINGS_TABLE") or None,
            dry_run=_flag(e.get("PERIMETER_DRY_RUN")),
            self_roles=frozenset(
                r.strip() for r in e.get("PERIMETER_SELF_ROLES", "").split(",") if r.strip()
            ),
            review_table=e.get("PERIMETER_REVIEW_TABLE") or None,
            exemptions_table=e.get("PERIMETER_EXEMPTIONS_TABLE") or None,
            exempt_days=int(e.get("PERIMETER_EXEMPT_DAYS") or 7),
        )


class Runtime:
    """Clients and adapters for one container, built on first use."""

    def __init__(self, settings: Settings, *, session: Any | None = None) -> None:
        self.settings = settings
        self._session = session

    @cached_property
    def session(self) -> Any:
        """A boto3 session when one was given (tests, the local runner), else a botocore session:
        only clients are needed, and ``import boto3`` would also import s3transfer."""
        if self._session is not None:
            return self._session
        import botocore.session

        # The layer's trimmed models (tools/trim_models.py) come before botocore's own: building
        # an EC2 client then loads 16 operations, not 700.
        core = botocore.session.get_session()
        paths = [str(MODELS), *filter(None, [core.get_config_variable("data_path")])]
        core.set_config_variable("data_path", os.pathsep.join(paths))
        core.register_component("data_loader", _loader(paths))
        return core

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
            session = self.session
            build = session.client if hasattr(session, "client") else session.create_client
            client = build(service, region_name=self.settings.region, config=self.client_config)
            self._clients[service] = client
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

        # The pool lets a group read fetch the region's route tables beside it (Ec2Adapter).
        return Ec2Adapter(self.client("ec2"), pool=self.pool)

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
    def ledger(self) -> Any:
        """The findings ledger (first times of each finding), or None when not configured."""
        from perimeter.adapters.ledger import FindingLedger

        if not self.settings.findings_table:
            return None
        return FindingLedger(self.client("dynamodb"), self.settings.findings_table)

    @cached_property
    def exemptions(self) -> Any:
        """The undo's exemptions (None when the function has no table: none are read)."""
        if not self.settings.exemptions_table:
            return None
        from perimeter.adapters.exemptions import ExemptionStore

        return ExemptionStore(self.client("dynamodb"), self.settings.exemptions_table)

    @cached_property
    def once(self) -> Any:
        """The idempotency table (None when the function has none: every event acts)."""
        if not self.settings.idempotency_table:
            return None
        from perimeter.core.once import OnceStore

        return OnceStore(
            self.client("dynamodb"),
            self.settings.idempotency_table,
            os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "perimeter"),
            self.settings.idempotency_ttl_seconds,
        )

    def run_once(self, key: str | None, fn: Callable[[], T], context: Any = None) -> T:
        """Run ``fn`` at most once per CloudTrail event id (EventBridge delivers at least once).
        A duplicate returns the first run's result without acting again; a failed run releases
        its claim, so Lambda's retry runs it again. The claim rides on the stage's first write
        and the completion beside its report (``perimeter.core.once``)."""
        store = self.once
        if store is None or not key:
            return fn()
        return store.run(key, fn, context)  # type: ignore[no-any-return]

    @cached_property
    def pool(self) -> Any:
        """Threads for a stage's independent writes (finding import, notification, completion)
        and reads, created once per container (started in the init phase: ``start_pool``);
        botocore clients are thread-safe. A caller that must know its work is over waits on
        its own futures (``started``), never on the pool, which outlives it."""
        from concurrent.futures import ThreadPoolExecutor

        return ThreadPoolExecutor(max_workers=POOL_WORKERS, thread_name_prefix="perimeter-io")

    def start_pool(self) -> Runtime:
        """Start every thread of the pool now. ``ThreadPoolExecutor`` starts a thread per
        submit while none is idle, so an invocation would pay for each one it needs (a few
        milliseconds each on a busy CPU, and the work waits for its thread): each thread is
        handed a wait at one barrier, so none can pick up a second before all have started."""
        import threading

        gate = threading.Barrier(POOL_WORKERS + 1)
        waits = [self.pool.submit(gate.wait, 10) for _ in range(POOL_WORKERS)]
        gate.wait(10)
        for w in waits:
            w.result()
        return self

    @contextmanager
    def started(self) -> Iterator[Started]:
        """Work put on the container's pool through this, waited for on the way out, whether
        the block returns or raises: nothing it started is left running unseen."""
        work = Started(self.pool)
        try:
            yield work
        finally:
            work.wait()

    def in_parallel(self, *calls: Callable[[], Any]) -> list[Any]:
        """Run independent writes together; wait for every one, then raise the first failure
        (in the order given), so a failed write always fails the invocation. The first runs
        on the calling thread (one thread hand-off fewer on the critical path), the others on
        the container's pool."""
        if len(calls) <= 1:
            return [c() for c in calls]
        futures = [self.pool.submit(c) for c in calls[1:]]
        first: Any = None
        errors: list[BaseException | None] = [None]
        try:
            first = calls[0]()
        except Exception as exc:  # noqa: BLE001 - raised below, once every write has finished
            errors[0] = exc
        errors += [f.exception() for f in futures]
        for err in errors:
            if err is not None:
                raise err
        return [first, *(f.result() for f in futures)]

    def warm(self, services: tuple[str, ...]) -> Runtime:
        """Build these services' clients now, load the policy if it is the packaged one, and
        start the pool's threads."""
        for service in services:
            self.client(service)
        if not self.settings.policy_parameter:
            _ = self.policy
        return self.start_pool()

    def restored(self) -> Runtime:
        """A runtime for a container restored from a snapshot: same settings and loaded service
        models, new session (credentials resolved again), new clients and connections."""
        import botocore.session

        core = botocore.session.get_session()
        old = getattr(self.session, "_session", self.session)  # a boto3 session wraps botocore's
        core.register_component("data_loader", old.get_component("data_loader"))
        fresh = Runtime(self.settings, session=core)
        if not self.settings.policy_parameter and "policy" in self.__dict__:
            fresh.__dict__["policy"] = self.policy
        fresh.warm(tuple(self._clients))  # its own pool, every thread started now
        if "pool" in self.__dict__:
            self.pool.shutdown(wait=False)  # the snapshot's threads stop, if they run at all
        return fresh


class Started:
    """What one caller put on the container's pool, so that it can wait for all of it."""

    def __init__(self, pool: Any) -> None:
        self._pool = pool
        self._futures: list[Future[Any]] = []

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = self._pool.submit(fn, *args, **kwargs)
        self._futures.append(future)
        return future

    def wait(self) -> None:
        """Until every piece has finished (failed ones too; their errors stay with their futures),
        pieces submitted meanwhile included."""
        from concurrent.futures import wait

        done = 0
        while done < len(self._futures):
            upto = len(self._futures)
            wait(self._futures[done:upto])
            done = upto


def _loader(paths: list[str]) -> Any:
    """botocore's loader, except that it checks a service exists by looking for that service
    alone: botocore's own lists every service it knows (a directory walk over 400-odd services,
    twice: the model and the endpoint rules) before loading the first model of a kind, tens of
    milliseconds of every cold start."""
    from botocore.exceptions import DataNotFoundError
    from botocore.loaders import Loader

    class Known:
        def __init__(self, loader: Loader, type_name: str) -> None:
            self._loader, self._type = loader, type_name

        def __contains__(self, service: object) -> bool:
            try:
                return bool(self._loader.list_api_versions(service, self._type))
            except DataNotFoundError:
                return False

        def __iter__(self) -> Any:  # every service: only an unknown service's error lists them
            return iter(Loader.list_available_services(self._loader, self._type))

    class OneServiceLoader(Loader):
        def list_available_services(self, type_name: str) -> Any:
            return Known(self, type_name)

    return OneServiceLoader(extra_search_paths=paths)


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


def init_container(services: tuple[str, ...]) -> Runtime | None:
    """Called by a handler module at import. In Lambda's init phase, build the clients now and
    register the SnapStart hooks; anywhere else, do nothing (clients come on first use)."""
    if not os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"):
        return None
    rt = get_runtime().warm(services)
    try:
        from snapshot_restore_py import register_after_restore  # Lambda's Python runtimes ship it
    except ImportError:
        return rt

    def after_restore() -> None:
        reset(get_runtime().restored())

    register_after_restore(after_restore)
    return rt
