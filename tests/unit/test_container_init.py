"""Init-time work and SnapStart (issue 10): in Lambda's init phase a handler builds its clients
and loads the packaged policy; a container restored from a snapshot gets new clients (new
credentials, no connection from before the snapshot) that reuse the loaded service models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import perimeter.core.runtime as runtime
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("ec2", "dynamodb", "securityhub", "sns")


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    for k, v in {
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PERIMETER_AUDIT_TABLE": "audit",
        "PERIMETER_IDEMPOTENCY_TABLE": "idem",
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("PERIMETER_POLICY_PARAMETER", raising=False)
    runtime.reset()
    yield monkeypatch
    runtime.reset()


def test_outside_lambda_init_nothing_is_built(lambda_env: Any) -> None:
    lambda_env.delenv("AWS_LAMBDA_INITIALIZATION_TYPE", raising=False)
    assert runtime.init_container(SERVICES) is None
    assert runtime._RUNTIME is None


def test_lambda_init_builds_the_clients_and_the_policy(lambda_env: Any) -> None:
    lambda_env.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")
    rt = runtime.init_container(SERVICES)
    assert rt is runtime.get_runtime()
    assert set(rt._clients) == set(SERVICES)
    assert "policy" in rt.__dict__


def test_a_restored_container_gets_new_clients_on_the_same_models(lambda_env: Any) -> None:
    lambda_env.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")
    before = runtime.init_container(SERVICES)
    assert before is not None
    after = before.restored()
    assert set(after._clients) == set(SERVICES)
    for service in SERVICES:
        assert after.client(service) is not before.client(service)
    assert after.session is not before.session
    assert after.session.get_component("data_loader") is before.session.get_component("data_loader")
    assert after.policy is before.policy


def test_every_function_is_snapstarted_through_an_alias() -> None:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)
    glob = template["Globals"]["Function"]
    assert glob["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert glob["AutoPublishAlias"]
    runtimes = {
        r["Properties"].get("Runtime", glob["Runtime"])
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Serverless::Function"
    }
    # SnapStart for Python needs 3.12 or later
    assert all(rt.startswith("python3.") and int(rt.split(".")[1]) >= 12 for rt in runtimes), runtimes


def test_building_a_client_does_not_list_every_service(lambda_env: Any) -> None:
    """botocore's loader walks the directory of every service it knows before loading the first
    model of a kind; the runtime's loader looks for the one service it is asked for, and an
    unknown service still fails as botocore fails."""
    from botocore.exceptions import UnknownServiceError
    from botocore.loaders import Loader

    def walk(*_: Any) -> Any:
        raise AssertionError("every service listed")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Loader, "list_available_services", walk)
        rt = runtime.Runtime(runtime.Settings.from_env())
        for service in SERVICES:
            assert rt.client(service).meta.service_model.service_name == service
        assert rt.client("ec2").meta.service_model.operation_model("RevokeSecurityGroupIngress")
    with pytest.raises(UnknownServiceError, match=r"Valid service names are: .*ec2"):
        runtime.Runtime(runtime.Settings.from_env()).client("no-such-service")


def _thread_starts_while(monkeypatch: Any, fn: Any) -> int:
    import threading

    started: list[str] = []
    start = threading.Thread.start

    def counted(thread: threading.Thread) -> None:
        started.append(thread.name)
        start(thread)

    with monkeypatch.context() as patch:
        patch.setattr(threading.Thread, "start", counted)
        fn()
    return len(started)


def _busy_pool(rt: Any) -> None:
    """As many jobs as the pool has threads, all at once (each holds its thread until all run)."""
    import threading

    gate = threading.Barrier(runtime.POOL_WORKERS)
    for f in [rt.pool.submit(gate.wait, 5) for _ in range(runtime.POOL_WORKERS)]:
        f.result()


def test_lambda_init_starts_every_thread_of_the_pool(lambda_env: Any) -> None:
    """ThreadPoolExecutor starts a thread per submit while none is idle: without the init phase
    starting them, the first invocation that needs the pool pays for each thread."""
    lambda_env.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")
    rt = runtime.init_container(SERVICES)
    assert rt is not None
    assert _thread_starts_while(lambda_env, lambda: _busy_pool(rt)) == 0
    # outside Lambda nothing is started ahead: the first use starts them
    fresh = runtime.Runtime(runtime.Settings.from_env())
    assert _thread_starts_while(lambda_env, lambda: _busy_pool(fresh)) == runtime.POOL_WORKERS
    fresh.pool.shutdown(wait=True)


def test_a_restored_container_starts_a_pool_of_its_own_and_stops_the_snapshots(lambda_env: Any) -> None:
    lambda_env.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start")
    before = runtime.init_container(SERVICES)
    assert before is not None
    after = before.restored()
    assert after.pool is not before.pool
    assert _thread_starts_while(lambda_env, lambda: _busy_pool(after)) == 0
    with pytest.raises(RuntimeError, match="shutdown"):
        before.pool.submit(print)


def test_started_waits_for_every_piece_even_when_the_block_raises(lambda_env: Any) -> None:
    import time

    rt = runtime.Runtime(runtime.Settings.from_env())
    done: list[int] = []

    def slow(i: int) -> None:
        time.sleep(0.05 * i)
        done.append(i)

    with pytest.raises(ValueError, match="judging failed"), rt.started() as work:
        for i in (1, 2, 3):
            work.submit(slow, i)
        raise ValueError("judging failed")
    assert sorted(done) == [1, 2, 3]
    rt.pool.shutdown(wait=True)
