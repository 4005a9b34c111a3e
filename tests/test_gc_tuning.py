"""Server processes keep start-up objects out of the cyclic collector and run full passes
rarely (src/app.py tune_gc; workload C in docs/benchmarks.md shows why)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from src.app import FULL_GC_EVERY, create_app
from src.config import Settings
from tests.helpers import running_app


@pytest.fixture
def restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


async def test_server_start_freezes_startup_objects_and_spaces_full_passes(
    settings: Settings, restore_gc: None
) -> None:
    young, middle, _ = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    app = create_app(settings.model_copy(update={"gc_tuning": True}))
    async with running_app(app) as http:
        assert gc.get_freeze_count() > 10_000  # modules, schema, ORM mappings
        assert gc.get_threshold() == (young, middle, FULL_GC_EVERY)
        resp = await http.post("/graphql", json={"query": "{ health }"})
        assert resp.json()["data"] == {"health": "ok"}


async def test_tuning_off_leaves_the_collector_alone(settings: Settings, restore_gc: None) -> None:
    before = gc.get_threshold()
    assert settings.gc_tuning is False  # tests/conftest.py: not in the test process
    async with running_app(create_app(settings)):
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == before
