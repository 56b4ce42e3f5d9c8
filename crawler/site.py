"""What the live FX168 site is: origin, URL shapes and CSS selectors, in one place.

A markup or URL change on the portal should be a change to this module only: parsers read
their selectors from here, spiders build their URLs here, and the replay server maps the
same URLs onto fixture files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qs, parse_qsl, quote, urlencode, urlsplit, urlunsplit

from w3lib.url import canonicalize_url, url_query_cleaner

#: The portal's canonical origin. Stored URLs always use it, whatever host served the page.
CANONICAL_BASE = "https://www.fx168news.com"

SEARCH_PATH = "/search"
#: Query parameters of the search page: keyword, result tab and 1-based page number.
SEARCH_KEYWORD_PARAM = "keyword"
SEARCH_TAB_PARAM = "type"
SEARCH_PAGE_PARAM = "page"
#: The tab the spider reads (the seed page's 文章 tab).
ARTICLE_TAB = "article"
#: The portal caps search pagination at this page.
MAX_SEARCH_PAGE = 1000

ARTICLE_PATH_RE = re.compile(r"^/article/(?P<id>\d+)$")
TOPIC_PATH_RE = re.compile(r"^/topic/(?P<id>\d+)$")

#: Query parameters that never change what a page shows (tracking, share and campaign tags).
TRACKING_PARAMS = frozenset(
    {"from", "source", "spm", "share", "share_from", "ref", "fbclid", "gclid", "isappinstalled"}
)
TRACKING_PREFIXES = ("utm_",)


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
    root: str = "article.article-detail"
    title: str = "h1.article-title"
    source_name: str = "div.article-meta .source-name"
    author: str = "div.article-meta .author-name"
    published: str = "div.article-meta time.article-time"
    #: The body container: its paragraphs are found at any depth (``text.block_texts``).
    body: str = "div.article-body"
    tags: str = "div.article-tags a.tag"
    canonical: str = "link[rel=canonical]"


SEARCH = SearchSelectors()
ARTICLE = ArticleSelectors()

#: "14讨论" -> 14
TOPIC_COUNT_RE = re.compile(r"^\s*(?P<n>\d+)\s*讨论\s*$")


def search_url(keyword: str, page: int = 1, tab: str = ARTICLE_TAB, base: str = CANONICAL_BASE) -> str:
    query = urlencode({SEARCH_KEYWORD_PARAM: keyword, SEARCH_TAB_PARAM: tab, SEARCH_PAGE_PARAM: page}, quote_via=quote)
    return f"{base.rstrip('/')}{SEARCH_PATH}?{query}"


def article_url(article_id: str | int, base: str = CANONICAL_BASE) -> str:
    return f"{base.rstrip('/')}/article/{article_id}"


def topic_url(topic_id: str | int, base: str = CANONICAL_BASE) -> str:
    return f"{base.rstrip('/')}/topic/{topic_id}"


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


def article_id(url: str) -> str | None:
    match = ARTICLE_PATH_RE.match(urlsplit(url).path)
    return match.group("id") if match else None


def rebase(url: str, base: str = CANONICAL_BASE) -> str:
    """The same path and query on another origin (a replay server's URL onto the live one)."""
    parts = urlsplit(url)
    target = urlsplit(base)
    return urlunsplit((target.scheme, target.netloc, parts.path, parts.query, parts.fragment))


#: Hosts that are the portal itself; their URLs are rewritten onto CANONICAL_BASE.
SITE_HOSTS = frozenset({"fx168news.com", "www.fx168news.com", "m.fx168news.com"})


def canonical_url(url: str, fetch_base: str | None = None) -> str:
    """One spelling per page: the portal's https origin, no fragment, no tracking parameters,
    sorted query. URLs of ``fetch_base`` (a replay server standing in for the portal) count
    as the portal's own."""
    if _ALREADY_CANONICAL.fullmatch(url):  # nearly every URL a crawl meets: nothing to change
        return url
    if fetch_base and (origin := _bare_origin(fetch_base)) and url.startswith(origin):
        rebased = CANONICAL_BASE + url[len(origin) :]  # a replay server's URL, its path kept
        if _ALREADY_CANONICAL.fullmatch(rebased):
            return rebased
    return _canonical_url(url, fetch_base)


@lru_cache(maxsize=16)
def _bare_origin(base: str) -> str | None:
    """'http://127.0.0.1:8931' for that base (also spelled with a trailing slash); None for a
    base with a path, query or fragment, whose URLs only the full pass may rebase."""
    parts = urlsplit(base)
    if parts.path not in ("", "/") or parts.query or parts.fragment or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


#: A URL that canonicalising leaves as it is: the canonical origin, a path of unreserved
#: characters, none starting with a dot (so no dot segments), no query, no fragment.
_ALREADY_CANONICAL = re.compile(re.escape(CANONICAL_BASE) + r"/(?:[\w~-][\w.~-]*(?:/[\w~-][\w.~-]*)*/?)?", re.ASCII)


#: A crawl meets the same URL several times (a hit, its article's canonical link, the article,
#: the frontier); canonicalising is a pure function of its arguments, so each is worked out once.
@lru_cache(maxsize=65_536)
def _canonical_url(url: str, fetch_base: str | None) -> str:
    parts = urlsplit(url.strip())
    local_hosts = set(SITE_HOSTS)
    if fetch_base:
        local_hosts.add(urlsplit(fetch_base).netloc.lower())
    if parts.netloc.lower() in local_hosts:
        url = rebase(url)
    params = [key for key, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True) if _is_tracking(key)]
    if params:
        url = url_query_cleaner(url, params, remove=True, keep_fragments=False)
    return canonicalize_url(url, keep_fragments=False)


def _is_tracking(key: str) -> bool:
    key = key.lower()
    return key in TRACKING_PARAMS or key.startswith(TRACKING_PREFIXES)
