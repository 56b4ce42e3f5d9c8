"""Run a crawl in this process: settings assembled from the project, the CLI and the replay server.

Log records are redacted (``storage.logsafety``) before Scrapy configures logging, so
nothing the crawl logs, at any level, shows the database password.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scrapy.crawler import CrawlerProcess
from scrapy.settings import Settings

from crawler import config
from crawler import settings as project_settings
from storage import logsafety


def project_settings_with(overrides: dict[str, Any] | None = None, replay: bool = False) -> Settings:
    settings = Settings()
    settings.setmodule(project_settings, priority="project")
    # the configuration file and the environment as they are now (the module read them when imported)
    settings.setdict(config.load().settings, priority="project")
    if replay:
        settings.setdict(project_settings.REPLAY_OVERRIDES, priority="cmdline")
    settings.setdict(overrides or {}, priority="cmdline")
    return settings


@dataclass
class CrawlResult:
    stats: dict[str, Any]

    @property
    def run_id(self) -> int | None:
        return self.stats.get("fxcrawl/run_id")

    @property
    def finish_reason(self) -> str | None:
        return self.stats.get("finish_reason")

    @property
    def ok(self) -> bool:
        return (
            self.finish_reason == "finished"
            and not self.stats.get("fxcrawl/store/spooled_items")
            and self.stats.get("fxcrawl/health") != "unhealthy"
        )


def run_crawl(spider: str, settings: Settings, **spider_args: Any) -> CrawlResult:
    """Crawl to the end (blocking) and return the crawl's final stats."""
    logsafety.protect_url(settings.get("FXCRAWL_DATABASE_URL"))
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(spider)
    process.crawl(crawler, **spider_args)
    process.start()
    assert crawler.stats is not None
    return CrawlResult(dict(crawler.stats.get_stats()))
