from datetime import timedelta

from storage.health import HealthPolicy, assess
from storage.models import CrawlRun, utcnow

NOW = utcnow()
POLICY = HealthPolicy(max_error_rate=0.2, min_hits_ratio=0.5, max_silence=timedelta(days=2))


def run(**fields) -> CrawlRun:
    values = {
        "finish_reason": "finished",
        "pages": 20,
        "rejected": 0,
        "errors": 0,
        "spooled": 0,
        "hits": 30,
        "articles_new": 5,
    }
    values.update(fields)
    return CrawlRun(**values)


def test_a_normal_run_is_healthy() -> None:
    assert assess(run(), [run(), run(), run()], NOW - timedelta(hours=1), NOW - timedelta(days=9), POLICY, NOW) == []


def test_a_parser_that_stopped_reading_the_listing_is_unhealthy() -> None:
    reasons = assess(run(pages=0, rejected=1, errors=1, hits=0, articles_new=0), [], None, None, POLICY, NOW)
    assert len(reasons) == 1 and "over the 20% threshold" in reasons[0]


def test_far_fewer_hits_than_usual_is_unhealthy() -> None:
    history = [run(hits=30), run(hits=40), run(hits=35)]
    assert assess(run(hits=20), history, NOW, NOW, POLICY, NOW) == []
    reasons = assess(run(hits=10), history, NOW, NOW, POLICY, NOW)
    assert reasons == ["10 listing results, far below the recent median of 35"]
    assert assess(run(hits=10), history[:2], NOW, NOW, POLICY, NOW) == []  # too little history to judge


def test_silence_longer_than_the_span_is_unhealthy() -> None:
    quiet = run(articles_new=0)
    assert assess(quiet, [], NOW - timedelta(days=1), NOW - timedelta(days=5), POLICY, NOW) == []
    reasons = assess(quiet, [], NOW - timedelta(days=3), NOW - timedelta(days=5), POLICY, NOW)
    assert len(reasons) == 1 and reasons[0].startswith("no new article since")
    reasons = assess(quiet, [], None, NOW - timedelta(days=3), POLICY, NOW)
    assert len(reasons) == 1 and "in any run since the first" in reasons[0]
    assert assess(run(articles_new=1), [], None, NOW - timedelta(days=30), POLICY, NOW) == []


def test_an_unfinished_or_spooling_run_is_unhealthy() -> None:
    assert assess(run(finish_reason="shutdown"), [], NOW, NOW, POLICY, NOW) == ["the crawl did not finish (shutdown)"]
    assert assess(run(spooled=7), [], NOW, NOW, POLICY, NOW) == ["7 items could not be stored (spooled)"]
