"""The start-up freeze: start-up objects leave the collector's walks for the crawl, and come back after."""

import gc

import pytest
from conftest import make_crawler
from scrapy.exceptions import NotConfigured

from crawler.memory import FreezeStartupObjects


@pytest.fixture(autouse=True)
def _unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_startup_objects_are_frozen_while_the_engine_runs() -> None:
    crawler = make_crawler()
    extension = FreezeStartupObjects.from_crawler(crawler)
    made_at_startup: object = object.__new__(type("Startup", (), {}))  # a tracked object from before the engine starts
    assert gc.get_freeze_count() == 0
    extension.engine_started()
    assert gc.get_freeze_count() > 1000
    assert crawler.stats.get_value("fxcrawl/gc/frozen_objects") == gc.get_freeze_count()
    assert gc.is_tracked(made_at_startup)
    assert all(o is not made_at_startup for o in gc.get_objects())  # frozen: no collection walks it
    extension.engine_stopped()
    assert gc.get_freeze_count() == 0


def test_the_freeze_can_be_turned_off() -> None:
    with pytest.raises(NotConfigured):
        FreezeStartupObjects.from_crawler(make_crawler(FXCRAWL_GC_FREEZE=False))


def test_the_engine_start_freezes_without_a_full_collection() -> None:
    """The full collection (about 200 ms of start-up's heap) runs when the extension is built,
    before the engine starts; at engine start, with the reactor running, there is only the freeze."""
    full: list[int] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            full.append(1)

    crawler = make_crawler()
    gc.callbacks.append(watch)
    try:
        extension = FreezeStartupObjects.from_crawler(crawler)
        assert full, "the garbage is collected when the extension is built"
        full.clear()
        extension.engine_started()
        assert not full, "engine_started ran a full collection on the reactor thread"
        assert gc.get_freeze_count() > 1000
    finally:
        gc.callbacks.remove(watch)
        extension.engine_stopped()
