"""Fixtures for the safety tests: a deployed stack in a fresh moto account per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from botocore.retries import standard

from tests.safety.world import BASE_ENV, Clock, World, deployed


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in BASE_ENV.items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "PERIMETER_DRY_RUN", "PERIMETER_POLICY_PARAMETER"):
        monkeypatch.delenv(k, raising=False)


@pytest.fixture(autouse=True)
def _no_backoff_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's retries still run (the throttle tests count them); only the sleep between
    attempts goes, or thousands of injected throttles would cost minutes of waiting."""
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)


@pytest.fixture(autouse=True)
def _clock(monkeypatch: pytest.MonkeyPatch) -> None:
    Clock.install(monkeypatch)


@pytest.fixture
def world() -> Iterator[World]:
    with deployed() as w:
        yield w


@pytest.fixture
def make_world() -> Iterator[Callable[..., World]]:
    """Several accounts in one test (a fault-free twin beside the faulted one): each call
    opens a new moto account; moto keeps one global state, so only the last one is live."""
    stack: list[object] = []

    def make(**kw: object) -> World:
        cm = deployed(**kw)  # type: ignore[arg-type]
        stack.append(cm)
        return cm.__enter__()

    yield make
    for cm in reversed(stack):
        cm.__exit__(None, None, None)  # type: ignore[attr-defined]
