"""What the live FX168 site is: hosts, URL shapes, JSON paths, CSS selectors, in one place.

www.fx168news.com is a Next.js application: each page is server-rendered HTML with the
page's data also as JSON in ``<script id="__NEXT_DATA__">``. Parsers read that JSON first and
the HTML second. Everything here comes from ``shared/live-site.md`` (public scrapers' code);
what nobody has seen live (the search page's JSON, the article JSON's author/source/tag keys,
the HTML markup beyond the JSON) is marked ASSUMED: a difference found live is a change to this
module only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from urllib.parse import parse_qs, parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from w3lib.url import canonicalize_url, url_query_cleaner

# --------------------------------------------------------------------------------------------
# Hosts

#: The portal's canonical origin. Stored URLs always use it, whatever host served the page.
CANONICAL_BASE = "https://www.fx168news.com"
#: The old news host: articles at /{section}/{YYMM}/{id}.shtml, another id space.
LEGACY_BASE = "https://news.fx168news.com"
#: The JSON API behind the channel lists and the 快讯 feed (gated by a rotating ``_pcc`` token).
API_BASE = "https://centerapi.fx168api.com"

#: Hosts that are the portal itself; their URLs are rewritten onto CANONICAL_BASE.
SITE_HOSTS = frozenset({"fx168news.com", "www.fx168news.com", "m.fx168news.com"})
#: Hosts of the legacy article pages.
LEGACY_HOSTS = frozenset({"news.fx168news.com", "news.fx168.com"})
#: Every host a crawl of the portal may fetch from.
ALL_HOSTS = SITE_HOSTS | LEGACY_HOSTS | {urlsplit(API_BASE).netloc}

#: The portal's time zone: the dates it prints are Beijing wall-clock time (+08:00, no DST).
SITE_TIMEZONE = "Asia/Shanghai"
SITE_TZ = ZoneInfo(SITE_TIMEZONE)
#: Its offset from UTC as ISO 8601 writes it: the offset of a site time written without one.
SITE_UTC_OFFSET = "+08:00"


class PageKind(StrEnum):
    """The kinds of page fxcrawl reads; counters and drift reports are kept per kind."""

    SEARCH = "search"
    ARTICLE = "article"
    LEGACY_ARTICLE = "legacy_article"
    CHANNEL = "channel"
    EXPRESS = "express"


# --------------------------------------------------------------------------------------------
# URL shapes

SEARCH_PATH = "/search"  # ASSUMED: the current search page's URL is not known
#: Query parameters of the search page: keyword, result tab and 1-based page number.
SEARCH_KEYWORD_PARAM = "keyword"
SEARCH_TAB_PARAM = "type"
SEARCH_PAGE_PARAM = "page"
#: The tab the spider reads (the seed page's 文章 tab).
ARTICLE_TAB = "article"
#: The portal caps search pagination at this page.
MAX_SEARCH_PAGE = 1000

#: /article/{urlCode}: urlCode is '{keyword}-{newsId}' (keyword raw or percent-encoded) or a bare newsId.
ARTICLE_PATH_RE = re.compile(r"^/article/(?:(?P<keyword>.+)-)?(?P<id>\d+)/?$", re.DOTALL)
#: news.fx168news.com/{section}/{YYMM}/{7-digit id}.shtml
LEGACY_PATH_RE = re.compile(r"^/(?P<section>[a-z]+)/(?P<yymm>\d{4})/(?P<id>\d{7})\.shtml$")
#: /info/{channel code}: 001 资讯, 001001 要闻, 001003 美股, 001008 加密货币
CHANNEL_PATH_RE = re.compile(r"^/info/(?P<code>\d{3,12})/?$")
EXPRESS_PATH = "/express"
FAST_NEWS_PATH_RE = re.compile(r"^/express/fastnews/(?P<id>\d+)/?$")
QUOTE_PATH_RE = re.compile(r"^/quote/(?P<symbol>[A-Za-z0-9._-]+)/?$")
DEFAULT_CHANNELS = ("001",)

# The JSON API (paths on API_BASE).
API_CHANNEL_PATH = "/cms/api/cmsnews/news/getNewsByChannel"
API_FAST_NEWS_PATH = "/cms/api/cmsFastNews/fastNews/getList"
#: GET this path on the site; the response header of this name carries the current API token.
API_TOKEN_PATH = "/app/common/v.js"
API_TOKEN_HEADER = "_pcc"
API_SITE_CHANNEL = "001"
API_PAGE_SIZE = 20
#: The API's answer to a call without a current token (any of these statuses, or a JSON body
#: whose ``code`` is not API_OK).
API_REFUSED_STATUSES = frozenset({401, 403})
API_OK = 0

#: Query parameters that never change what a page shows (tracking, share and campaign tags).
TRACKING_PARAMS = frozenset(
    {"from", "source", "spm", "share", "share_from", "ref", "fbclid", "gclid", "isappinstalled"}
)
TRACKING_PREFIXES = ("utm_",)


def search_url(keyword: str, page: int = 1, tab: str = ARTICLE_TAB, base: str = CANONICAL_BASE) -> str:
    query = urlencode({SEARCH_KEYWORD_PARAM: keyword, SEARCH_TAB_PARAM: tab, SEARCH_PAGE_PARAM: page}, quote_via=quote)
    return f"{base.rstrip('/')}{SEARCH_PATH}?{query}"


def article_url(
    news_id: str | int, keyword: str | None = None, base: str = CANONICAL_BASE, encode: bool = False
) -> str:
    """/article/{keyword}-{newsId}, or /article/{newsId} without a keyword."""
    code = f"{quote(keyword) if encode else keyword}-{news_id}" if keyword else str(news_id)
    return f"{base.rstrip('/')}/article/{code}"


def legacy_article_url(section: str, yymm: str, legacy_id: str | int, base: str = LEGACY_BASE) -> str:
    return f"{base.rstrip('/')}/{section}/{yymm}/{legacy_id}.shtml"


def channel_url(code: str, base: str = CANONICAL_BASE) -> str:
    return f"{base.rstrip('/')}/info/{code}"


def express_url(base: str = CANONICAL_BASE) -> str:
    return f"{base.rstrip('/')}{EXPRESS_PATH}"


def fast_news_url(fast_news_id: str | int, base: str = CANONICAL_BASE) -> str:
    return f"{base.rstrip('/')}/express/fastnews/{fast_news_id}"


def topic_url(topic_id: str | int, base: str = CANONICAL_BASE) -> str:
    return f"{base.rstrip('/')}/topic/{topic_id}"  # ASSUMED: the topic page URL is not known


def api_channel_url(code: str, page: int, page_size: int = API_PAGE_SIZE, base: str = API_BASE) -> str:
    query = urlencode({"pageNo": page, "pageSize": page_size, "channelCodes": code})
    return f"{base.rstrip('/')}{API_CHANNEL_PATH}?{query}"


def api_fast_news_url(page: int, page_size: int = API_PAGE_SIZE, base: str = API_BASE) -> str:
    query = urlencode(
        {
            "fastChannelId": API_SITE_CHANNEL,
            "pageNo": page,
            "pageSize": page_size,
            "appCategory": "web",
            "direct": "down",
        }
    )
    return f"{base.rstrip('/')}{API_FAST_NEWS_PATH}?{query}"


def api_token_url(base: str = CANONICAL_BASE) -> str:
    return f"{base.rstrip('/')}{API_TOKEN_PATH}"


def api_headers(token: str | None, site_base: str = CANONICAL_BASE) -> dict[str, str]:
    """The headers the JSON API wants besides the token (live-site.md: Origin, Referer, Site-Channel)."""
    origin = site_base.rstrip("/")
    headers = {"Origin": origin, "Referer": origin + "/", "Site-Channel": API_SITE_CHANNEL}
    if token:
        headers[API_TOKEN_HEADER] = token
    return headers


@dataclass(frozen=True, slots=True)
class SearchQuery:
    keyword: str
    tab: str
    page: int


def parse_search_url(url: str) -> SearchQuery | None:
    """The (keyword, tab, page) a search URL asks for, or None if it is not a search URL."""
    parts = urlsplit(url)
    if parts.path.rstrip("/") != SEARCH_PATH:
        return None
    params = parse_qs(parts.query)
    keyword = params.get(SEARCH_KEYWORD_PARAM, [""])[0].strip()
    if not keyword:
        return None
    tab = params.get(SEARCH_TAB_PARAM, [ARTICLE_TAB])[0] or ARTICLE_TAB
    try:
        page = int(params.get(SEARCH_PAGE_PARAM, ["1"])[0])
    except ValueError:
        return None
    if page < 1:
        return None
    return SearchQuery(keyword, tab, page)


@dataclass(frozen=True, slots=True)
class ArticleRef:
    """An article's identity: its newsId on the portal, or its id on the legacy host (another
    id space, so the two never meet). Every URL spelling of one article gives one ref."""

    kind: str  # "news" or "legacy"
    id: int
    section: str = ""
    yymm: str = ""

    @property
    def url(self) -> str:
        """The one URL the article is stored under."""
        if self.kind == "legacy":
            return legacy_article_url(self.section, self.yymm, self.id)
        return article_url(self.id)


def article_ref(url: str) -> ArticleRef | None:
    """The article a URL names, whatever its keyword, encoding or host; None if it names none."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    path = unquote(parts.path)
    if host in LEGACY_HOSTS or (not host.endswith("fx168news.com") and LEGACY_PATH_RE.match(path)):
        if match := LEGACY_PATH_RE.match(path):
            return ArticleRef("legacy", int(match.group("id")), match.group("section"), match.group("yymm"))
        return None
    if match := ARTICLE_PATH_RE.match(path):
        return ArticleRef("news", int(match.group("id")))
    return None


def article_id(url: str) -> str | None:
    """The newsId of a portal article URL (any shape), or None."""
    ref = article_ref(url)
    return str(ref.id) if ref is not None and ref.kind == "news" else None


def page_kind(url: str) -> PageKind | None:
    """What kind of page a URL of the portal (or a replay server standing in for it) is."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    if parse_search_url(url) is not None:
        return PageKind.SEARCH
    if LEGACY_PATH_RE.match(path):
        return PageKind.LEGACY_ARTICLE
    if ARTICLE_PATH_RE.match(path):
        return PageKind.ARTICLE
    if CHANNEL_PATH_RE.match(path):
        return PageKind.CHANNEL
    if path.rstrip("/") == EXPRESS_PATH or FAST_NEWS_PATH_RE.match(path):
        return PageKind.EXPRESS  # a fast news permalink shows one item in the feed's shape
    return None


def channel_code(url: str) -> str | None:
    match = CHANNEL_PATH_RE.match(urlsplit(url).path)
    return match.group("code") if match else None


def quote_symbol(url: str) -> str | None:
    """'BINBTC' for a link to /quote/BINBTC on the portal."""
    parts = urlsplit(url)
    if parts.netloc and (parts.hostname or "").lower() not in SITE_HOSTS:
        return None
    match = QUOTE_PATH_RE.match(parts.path)
    return match.group("symbol") if match else None


# --------------------------------------------------------------------------------------------
# The page data as JSON (``__NEXT_DATA__``)

NEXT_DATA_ID = "__NEXT_DATA__"
#: Where each page kind keeps its data in __NEXT_DATA__, tried in order (an older build first
#: seen is listed last).
JSON_PATHS: dict[PageKind, tuple[tuple[str, ...], ...]] = {
    PageKind.CHANNEL: (("props", "pageProps", "data", "infoListData", "items"),),
    PageKind.ARTICLE: (("props", "pageProps", "data", "getNewsDetailData"),),
    PageKind.EXPRESS: (
        ("props", "pageProps", "data", "express", "items"),
        ("props", "pageProps", "data", "courierList"),
    ),
    # ASSUMED: the search page's JSON is not known; shaped like the channel list's.
    PageKind.SEARCH: (("props", "pageProps", "data", "searchData"),),
}


@dataclass(frozen=True, slots=True)
class NewsKeys:
    """Keys of a news item in the channel list, the article detail and the API."""

    news_id: str = "newsId"
    url_code: str = "urlCode"
    title: str = "newsTitle"
    published: str = "firstPublishTime"  # "YYYY-MM-DD HH:MM:SS", Beijing time
    image: str = "displayImage"
    content: str = "newsContent"  # HTML, or for a video a JSON string {"appId": …, "fileId": …}
    # ASSUMED from the older app API: the detail's author, source, tags and summary keys.
    author: str = "nickname"
    source: str = "newsSource"
    tags: str = "keywords"
    summary: str = "newsSummary"


@dataclass(frozen=True, slots=True)
class SearchKeys:
    """ASSUMED: the search page's JSON (not known live), shaped like the channel list."""

    items: str = "items"
    page: str = "pageNo"
    last_page: str = "totalPage"
    keyword: str = "keyWord"
    highlight: str = "highlightContent"  # the snippet as HTML, every keyword character in span.hl
    source: str = "sourceName"
    source_logo: str = "sourceLogo"
    date: str = "publishDate"
    hot: str = "hotNews"
    topics: str = "hotTopics"
    topic_id: str = "topicId"
    topic_name: str = "topicName"
    topic_count: str = "discussCount"


@dataclass(frozen=True, slots=True)
class FastNewsKeys:
    fast_news_id: str = "fastNewsId"
    published: str = "publishTime"
    text: str = "textContent"
    plain_text: str = "pureTextContent"
    pinned: str = "isTop"  # pinned when not 0


NEWS = NewsKeys()
SEARCH_JSON = SearchKeys()
FAST_NEWS = FastNewsKeys()

#: The API's envelope: {"code": 0, "data": {"items": [...]}}
API_ITEMS_PATH = ("data", "items")


# --------------------------------------------------------------------------------------------
# The HTML (read when the JSON is missing: older pages, the legacy host, a redesign)


@dataclass(frozen=True, slots=True)
class SearchSelectors:
    result_list: str = "ul.search-list"
    result: str = "ul.search-list > li.search-item"
    result_title: str = "h3.item-title > a"
    result_snippet: str = "p.item-snippet"
    highlight_class: str = "hl"
    result_source_name: str = "div.item-meta .source-name"
    result_source_logo: str = "div.item-meta img.source-logo"
    result_date: str = "div.item-meta time.item-date"
    pagination: str = "div.pagination"
    page_current: str = "div.pagination .current"
    page_links: str = "div.pagination a.page"
    page_prev: str = "div.pagination a.prev"
    page_next: str = "div.pagination a.next"
    hot_entry: str = "aside.hot ol.hot-list > li"
    hot_link: str = "a.hot-title"
    topic_entry: str = "aside.topics ul.topic-list > li"
    topic_link: str = "a.topic-name"
    topic_count: str = "span.topic-count"
    active_tab: str = "nav.search-tabs a.active"
    keyword_input: str = "form.search-form input[name=keyword]"


@dataclass(frozen=True, slots=True)
class ArticleSelectors:
    """The server-rendered article page (ASSUMED markup around the real ``newsContent``)."""

    root: str = "article.article-detail"
    title: str = "h1.article-title"
    source_name: str = "div.article-meta .source-name"
    author: str = "div.article-meta .author-name"
    published: str = "div.article-meta time.article-time"
    summary: str = "div.article-summary"
    #: The container the page renders ``newsContent`` into.
    body: str = "div.article-body"
    video: str = "div.article-video[data-file-id]"
    #: The article's picture (the JSON's displayImage), as Next.js pages declare it for sharing.
    image: str = "meta[property='og:image']"
    tags: str = "div.article-tags a.tag"
    canonical: str = "link[rel=canonical]"


@dataclass(frozen=True, slots=True)
class LegacyArticleSelectors:
    """news.fx168news.com/…shtml: the old CMS's markup, HTML only."""

    root: str = "div.article-main"
    title: str = "div.article-main h1"
    source_name: str = "div.article-info span.source"
    author: str = "div.article-info span.author"
    published: str = "div.article-info span.time"
    body: str = "div.TRS_Editor"
    tags: str = "div.article-keywords a"
    canonical: str = "link[rel=canonical]"


@dataclass(frozen=True, slots=True)
class ContentSelectors:
    """Inside ``newsContent`` (seen live): the body, its links, and what is not body."""

    container: str = "div.centerarticle"
    topic_link: str = "a.topic-entity[data-key=topic]"
    topic_id_attr: str = "data-value"
    internal_link: str = "a._internal_link_"
    image_block: str = "div.braft-img-container"
    #: The reprint footer after the body: a div with a border-top rule.
    footer: str = "div[style*='border-top']"


@dataclass(frozen=True, slots=True)
class ChannelSelectors:
    item: str = "ul.news-list > li.news-item"
    link: str = "a.news-title"
    time: str = "time.news-time"
    image: str = "img.news-image"


@dataclass(frozen=True, slots=True)
class ExpressSelectors:
    item: str = "ul.express-list > li.express-item"
    id_attr: str = "data-id"
    time: str = "time.express-time"
    text: str = "div.express-text"
    pinned_class: str = "is-top"


SEARCH = SearchSelectors()
ARTICLE = ArticleSelectors()
LEGACY_ARTICLE = LegacyArticleSelectors()
CONTENT = ContentSelectors()
CHANNEL = ChannelSelectors()
EXPRESS = ExpressSelectors()

#: "14讨论" -> 14
TOPIC_COUNT_RE = re.compile(r"^\s*(?P<n>\d+)\s*讨论\s*$")
#: '#比特日报#' -> '比特日报'
TOPIC_NAME_RE = re.compile(r"^#?(?P<name>.*?)#?$")

# Boilerplate inside newsContent that is not the article (public scrapers strip the same).
#: '敬告读者：本文为转载发布…' and '本文转载自X，原文链接:…': a syndicated piece; X is its outlet.
REPRINT_NOTICE_RE = re.compile(r"^(?:敬告读者[:：]|本文转载自)")
REPRINT_OUTLET_RE = re.compile(
    r"(?:本文转载自|转载自|原文来源[:：]|来源[:：])\s*(?P<outlet>[^，,。;；：:（）()\s]{2,30})"
)
#: '（市场有风险，投资需谨慎。本文为AI基于第三方数据生成…）'
AI_NOTICE_RE = re.compile(r"^[（(]?\s*市场有风险，投资需谨慎。本文为AI")
#: An image credit or attribution line alone: '（来源：coindesk）'
CREDIT_RE = re.compile(r"^[（(]\s*(?:来源|图片来源|图源|图)[:：][^）)]*[）)]$")
#: The trailing source tag of a fast news item: '…（路透）', '【…】' is not one.
FAST_NEWS_SOURCE_TAG_RE = re.compile(r"\s*[（(](?P<tag>[^（）()]{1,12})[）)]\s*$")


# --------------------------------------------------------------------------------------------
# Canonical URLs


def rebase(url: str, base: str = CANONICAL_BASE) -> str:
    """The same path and query on another origin (a replay server's URL onto the live one)."""
    parts = urlsplit(url)
    target = urlsplit(base)
    return urlunsplit((target.scheme, target.netloc, parts.path, parts.query, parts.fragment))


def fetch_url(url: str, fetch_base: str | None) -> str:
    """Where to fetch a URL of the portal (any of its hosts, the API too) when a replay server
    at ``fetch_base`` stands in for the live site; the URL itself when there is none."""
    if not fetch_base or _bare_origin(fetch_base) == _bare_origin(CANONICAL_BASE):
        return url
    host = (urlsplit(url).hostname or "").lower()
    return rebase(url, fetch_base) if host in ALL_HOSTS else url


def is_site_url(url: str, fetch_base: str | None = None) -> bool:
    """Is this an http(s) URL of the portal (or of the replay server standing in for it)?"""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        return False
    host = (parts.hostname or "").lower()
    if host in SITE_HOSTS or host in LEGACY_HOSTS:
        return True
    return bool(fetch_base) and parts.netloc.lower() == urlsplit(fetch_base or "").netloc.lower()


@lru_cache(maxsize=16)
def _bare_origin(base: str) -> str | None:
    """'http://127.0.0.1:8931' for that base (also spelled with a trailing slash); None for a
    base with a path, query or fragment."""
    parts = urlsplit(base)
    if parts.path not in ("", "/") or parts.query or parts.fragment or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


#: A crawl meets the same URL several times (a hit, its article's canonical link, the article,
#: the frontier); canonicalising is a pure function of its arguments, so each is worked out once.
@lru_cache(maxsize=65_536)
def canonical_url(url: str, fetch_base: str | None = None) -> str:
    """One spelling per page: an article's one URL whatever its keyword or encoding (see
    ArticleRef), otherwise the portal's https origin, no fragment, no tracking parameters,
    sorted query. URLs of ``fetch_base`` (a replay server) count as the portal's own."""
    url = url.strip()
    parts = urlsplit(url)
    host = parts.netloc.lower()
    local = host in SITE_HOSTS or host in LEGACY_HOSTS or (fetch_base and host == urlsplit(fetch_base).netloc.lower())
    if local:
        ref = article_ref(url if host in LEGACY_HOSTS else rebase(url))
        if ref is None and LEGACY_PATH_RE.match(unquote(parts.path)):
            ref = article_ref(rebase(url, LEGACY_BASE))
        if ref is not None:
            return ref.url
        if host not in LEGACY_HOSTS:
            url = rebase(url)
    params = [key for key, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True) if _is_tracking(key)]
    if params:
        url = url_query_cleaner(url, params, remove=True, keep_fragments=False)
    return canonicalize_url(url, keep_fragments=False)


def _is_tracking(key: str) -> bool:
    key = key.lower()
    return key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES)
