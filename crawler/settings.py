"""Scrapy settings for fxcrawl: a polite crawler of the live portal by default.

fxcrawl's own settings are prefixed FXCRAWL_. The values below are the defaults: the
configuration file and the environment (crawler/config.py: ``fxcrawl.toml``, $FXCRAWL_CONFIG,
$DATABASE_URL, …) are applied over them at the end of this module, the one place a crawl reads
either; flags (``-s``, Scrapyd's ``setting=``) go over both. Components receive everything
through ``from_crawler``.
"""

from crawler import config as _config
from fx168 import site

BOT_NAME = "fxcrawl"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

#: Identifies the crawler (who runs it and where to read about it), as polite crawlers do; the
#: site serves its pages to a browser-like request, so the other headers are a browser's.
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36 "
    "fxcrawl/0.1 (+https://github.com/fxcrawl/fxcrawl; news archive crawler)"
)
DEFAULT_REQUEST_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.6",
    "Referer": site.CANONICAL_BASE + "/",
}

# Politeness towards the live site: robots.txt obeyed, at most one request a second per
# domain, slower when the site answers slowly (AutoThrottle).
ROBOTSTXT_OBEY = True
#: Scrapy's default, named: robots.txt bodies read by Protego (RFC 9309). What a robots.txt that
#: could not be read means is decided from its status (crawler.downloadermiddlewares).
ROBOTSTXT_PARSER = "scrapy.robotstxt.ProtegoRobotParser"
CONCURRENT_REQUESTS = 8
CONCURRENT_REQUESTS_PER_DOMAIN = 1
DOWNLOAD_DELAY = 1.0
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 1.0
DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 10 * 1024 * 1024
DOWNLOAD_WARNSIZE = 2 * 1024 * 1024
RETRY_ENABLED = True
RETRY_TIMES = 3
# The spider logs each URL it gives up on (with the reason) at ERROR; Scrapy need not count it again.
RETRY_GIVE_UP_LOG_LEVEL = "WARNING"
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
HTTPCACHE_ENABLED = False
# No cookie jar: nothing fxcrawl reads needs one (the API's token travels as a header), and
# Scrapy's jar looks up the public-suffix list on the network the first time a site sets one.
COOKIES_ENABLED = False

# A crawl opens no listening port: no telnet console, and no remote-control HTTP server (Scrapy
# 2.19 starts one by default that runs Python code sent to it).
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False

FEED_EXPORT_ENCODING = "utf-8"
#: Feed records name their kind (`item_type`): one feed holds articles, hits, sources … (crawler/feeds.py).
FEED_EXPORTERS = {
    "json": "crawler.feeds.JsonExporter",
    "jsonlines": "crawler.feeds.JsonLinesExporter",
    "jsonl": "crawler.feeds.JsonLinesExporter",
    "jl": "crawler.feeds.JsonLinesExporter",
    "xml": "crawler.feeds.XmlExporter",
}
LOG_LEVEL = "INFO"

# Per-response overhead that buys nothing here. Scrapy starts CONCURRENT_ITEMS asyncio tasks for
# every response's output (100 by default, for an article page's one item); the pipelines do not
# await, so a few are as fast. And it re-reads a generator callback's source with ast on every
# response to warn about `return value` in generators (its cache is keyed by the bound method,
# made anew per call); tests/test_spiders_search.py checks that once instead.
CONCURRENT_ITEMS = 16
WARN_ON_GENERATOR_RETURN_VALUE = False
# No per-response or per-item DEBUG record is built unless LOG_LEVEL shows it.
LOG_FORMATTER = "crawler.logformat.LevelAwareLogFormatter"

ITEM_PIPELINES = {
    "pipelines.validate.ValidatePipeline": 100,
    "pipelines.dedupe.DedupePipeline": 200,
    "pipelines.store.StorePipeline": 300,
}
EXTENSIONS = {
    "crawler.memory.FreezeStartupObjects": 100,
    "crawler.ledger.RunRecorder": 500,
    "crawler.progress.CrawlProgress": 600,
}
SPIDER_MIDDLEWARES = {
    "crawler.middlewares.IncrementalMiddleware": 550,
    # Innermost (nearest the spider): stamps each article with its response's archive record.
    "crawler.archive.ArchiveStampMiddleware": 900,
}
DOWNLOADER_MIDDLEWARES = {
    # After Scrapy's RobotsTxtMiddleware (100): a robots.txt answered 4xx allows everything, one
    # answered 5xx/429 or not at all disallows its host (RFC 9309), where Scrapy would allow it.
    "crawler.downloadermiddlewares.RobotsTxtStatusMiddleware": 110,
    # Retries that wait out Retry-After on 429/503.
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawler.downloadermiddlewares.RetryAfterMiddleware": 550,
    # After decompression (590): the encoding decided when the declared one is missing or wrong.
    "crawler.downloadermiddlewares.EncodingMiddleware": 585,
    # Between decompression (590) and the encoding decision: every response as the spider reads it,
    # handed to the store's writer thread for the WARC archive (crawler/archive.py).
    "crawler.archive.ArchiveMiddleware": 589,
}

# fxcrawl's own settings.
#: Where pages are fetched from; a replay server's URL in demos and tests. Stored URLs always
#: use the portal's canonical origin whatever this is.
FXCRAWL_BASE_URL = site.CANONICAL_BASE
#: Pages read by their HTML too, to check it against their JSON (markup/disagree): the first
#: VERIFY_FIRST pages of each kind in a run, then one in VERIFY_EVERY (0: no more).
FXCRAWL_VERIFY_FIRST = 5
FXCRAWL_VERIFY_EVERY = 10
#: Where the JSON API is called (None: the live API with the live site, else FXCRAWL_BASE_URL,
#: as a replay server answers both).
FXCRAWL_API_BASE_URL = None
FXCRAWL_DATABASE_URL = "sqlite:///data/fxcrawl.db"
#: The Redis that distributed crawls share (`fxcrawl seed`, `workers`, `crawl --distributed`).
FXCRAWL_REDIS_URL = "redis://127.0.0.1:6379/0"
FXCRAWL_TIMEZONE = site.SITE_TIMEZONE
#: Items buffered before one batched write (2,000 measured faster than 500 and 1,000 on SQLite
#: and PostgreSQL), and the longest an item waits in the buffer (s).
FXCRAWL_STORE_BATCH_SIZE = 2000
FXCRAWL_STORE_MAX_DELAY = 2.0

#: Freeze the objects made at start-up when the engine starts, so the garbage collector's full
#: passes during the crawl skip them (crawler/memory.py).
FXCRAWL_GC_FREEZE = True

#: Items waiting for the writer before the crawl has to wait (back-pressure, not a drop).
FXCRAWL_STORE_MAX_PENDING = 10_000
#: Distributed workers: how often an idle worker looks at the shared queue again (IdlePoller in
#: crawler/distributed.py; Scrapy's engine heartbeat is 5 s, long enough for the other workers to
#: take everything meanwhile); 0: only on the heartbeat.
FXCRAWL_IDLE_POLL_INTERVAL = 0.5
#: Retries of a batch on transient database errors: at most ATTEMPTS tries over at most
#: RETRY_BUDGET seconds (enough to ride out a database restart), pauses growing to MAX_WAIT.
FXCRAWL_STORE_RETRY_ATTEMPTS = 15
FXCRAWL_STORE_RETRY_MAX_WAIT = 8.0
FXCRAWL_STORE_RETRY_BUDGET = 90.0
#: Batches the database would not take wait here for replay, one subfolder per database identity
#: (dialect, host, port, name; the resolved file for SQLite). Default: a `spool` folder beside the
#: SQLite file, else the per-user data folder (platformdirs: ~/.local/share/fxcrawl/spool).
FXCRAWL_SPOOL_DIR = None
#: The WARC archive (storage/archive): every response and its request, in files of one run each,
#: ``fxcrawl-<run>-<seq>.warc.gz``, a new file past MAX_BYTES; identical payloads as revisits.
#: DIR: default an `archive` folder beside the SQLite file, else the per-user data folder.
#: Retention (None: keep everything): whole files of runs older than KEEP_DAYS, or of the oldest
#: runs while the archive is over KEEP_BYTES, are deleted as a crawl starts.
#: PROCESS: the records are built, gzipped and written by a child process (storage/archive/child.py),
#: off the crawl's interpreter lock, once PROCESS_AFTER responses are archived (a shorter crawl
#: is over before a child pays for its start); False writes them on the store's writer thread.
FXCRAWL_ARCHIVE_ENABLED = True
FXCRAWL_ARCHIVE_PROCESS = True
FXCRAWL_ARCHIVE_PROCESS_AFTER = 200
FXCRAWL_ARCHIVE_DIR = None
FXCRAWL_ARCHIVE_MAX_BYTES = 1_000_000_000
FXCRAWL_ARCHIVE_KEEP_DAYS = None
FXCRAWL_ARCHIVE_KEEP_BYTES = None
#: Off for a re-parse of the archive (nothing was fetched, so nothing owed or due changes).
FXCRAWL_KEEP_FRONTIER = True

#: The run ledger: a running crawl's row gets a heartbeat (and its counts so far) every HEARTBEAT
#: seconds; an open row whose process is gone from this host, or whose heartbeat is older than
#: STALE_AFTER seconds, is marked crashed by the next run or scheduler start.
FXCRAWL_RUN_HEARTBEAT = 10.0
FXCRAWL_RUN_STALE_AFTER = 60.0

#: Incremental crawling: stop paging after this many consecutive results that are already
#: stored and unchanged (one page); 0 turns incremental crawling off.
FXCRAWL_INCREMENTAL_STOP_AFTER = 10
#: Recrawl policy (seconds): articles younger than MAX_AGE are revisited, with conditional
#: requests, every INTERVAL; failed fetches are retried after RETRY_DELAY, doubling each time,
#: up to MAX_ATTEMPTS.
FXCRAWL_RECRAWL_MAX_AGE = 3 * 86400
FXCRAWL_RECRAWL_INTERVAL = 6 * 3600
FXCRAWL_FRONTIER_RETRY_DELAY = 600
FXCRAWL_FRONTIER_MAX_ATTEMPTS = 5
#: Whether a listing's article requests wait for the writer to commit what the listing showed
#: (at most FXCRAWL_FRONTIER_RECORD_TIMEOUT seconds). None: only when requests can outlive the
#: process, a scrapy-redis queue or a JOBDIR (crawler/middlewares.py says why).
FXCRAWL_FRONTIER_AWAIT_COMMIT = None
FXCRAWL_FRONTIER_RECORD_TIMEOUT = 10.0
#: Retry-After on these statuses pauses the host (the retry included) for that long, at most MAX seconds.
FXCRAWL_RETRY_AFTER_CODES = [429, 503]
FXCRAWL_RETRY_AFTER_MAX = 60.0
#: Decode every page of the site as this encoding whatever it declares (e.g. "gb18030" for a site
#: whose headers lie); None: trust a declaration the body agrees with, else detect among
#: DETECT_ENCODINGS (the first wins a tie).
FXCRAWL_FORCE_ENCODING = None
FXCRAWL_DETECT_ENCODINGS = ["gb18030", "big5"]
#: The scheduled job a crawl runs for (run health compares runs of one job).
FXCRAWL_JOB = None
#: Run health thresholds: errors plus rejects per page fetched; a run whose listing hits fall
#: below this share of the job's recent median; the longest a job may go without a new article.
FXCRAWL_HEALTH_MAX_ERROR_RATE = 0.2
FXCRAWL_HEALTH_MIN_HITS_RATIO = 0.5
FXCRAWL_HEALTH_MAX_SILENCE = 2 * 86400
FXCRAWL_HEALTH_HISTORY = 10

#: Progress of a crawl (crawler/progress.py): "auto" (a live line when stderr is a terminal and
#: LOG_LEVEL is not ERROR, else an INFO line every INTERVAL seconds), "live", "log" or "off"
#: (the scheduler sets $FXCRAWL_PROGRESS=log for its crawls: several live lines would fight).
FXCRAWL_PROGRESS = "auto"
FXCRAWL_PROGRESS_INTERVAL = 30.0

#: Alerts of a one-shot `fxcrawl crawl` (fxcrawl/alerts.py; the scheduler alerts for its jobs): an
#: unhealthy or crashed run POSTs its summary as JSON to WEBHOOK and/or runs COMMAND (a shell-quoted
#: string) with it on stdin. The webhook is tried ATTEMPTS times, pauses doubling from RETRY_WAIT
#: seconds (at most 30), TIMEOUT seconds each.
FXCRAWL_ALERT_WEBHOOK = None
FXCRAWL_ALERT_COMMAND = None
FXCRAWL_ALERT_ATTEMPTS = 5
FXCRAWL_ALERT_RETRY_WAIT = 1.0
FXCRAWL_ALERT_TIMEOUT = 10.0
#: A one-shot crawl writes the Prometheus series (fxcrawl/metrics.py) here once it has ended, in the
#: node exporter's textfile-collector format; None: not written.
FXCRAWL_METRICS_TEXTFILE = None

#: Applied on top of the above when crawling the loopback replay server: no throttling.
REPLAY_OVERRIDES = {
    "AUTOTHROTTLE_ENABLED": False,
    "DOWNLOAD_DELAY": 0,
    "CONCURRENT_REQUESTS": 16,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 16,
}

# The configuration file and the environment, over the defaults above (crawler/config.py).
globals().update(_config.load().settings)
