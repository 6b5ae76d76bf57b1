"""``MACFORGE_SEEDS=N pytest``: every test that draws its seed from `sim.runner.test_seed`
runs N times, round r with seeds derived from (test name, r); round 0 keeps the
default seeds. A failure names its seed (replay it with ``MACFORGE_SEED=...``)."""

from __future__ import annotations

import inspect
import os

import pytest


def _rounds() -> int:
    env = os.environ.get("MACFORGE_SEEDS", "1")
    try:
        n = int(env)
    except ValueError:
        raise pytest.UsageError(f"MACFORGE_SEEDS must be a positive integer, got {env!r}") from None
    if n < 1:
        raise pytest.UsageError(f"MACFORGE_SEEDS must be a positive integer, got {env!r}")
    return n


def pytest_generate_tests(metafunc):
    rounds = _rounds()
    if rounds > 1 and "test_seed(" in inspect.getsource(metafunc.function):
        metafunc.fixturenames.append("macforge_seed_round")
        metafunc.parametrize("macforge_seed_round", range(rounds), indirect=True)


@pytest.fixture
def macforge_seed_round(request, monkeypatch):
    """Round ``request.param`` of a ``MACFORGE_SEEDS`` run (seeds differ per round)."""
    monkeypatch.setenv("MACFORGE_SEED_ROUND", str(request.param))
    return request.param
