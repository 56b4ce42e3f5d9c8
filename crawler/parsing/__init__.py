"""Pure page parsers: (HTML, URL) in, typed records out. No Scrapy, no network, no database."""

from crawler.parsing.article_page import parse_article_page
from crawler.parsing.errors import PageParseError
from crawler.parsing.search_page import parse_search_page

__all__ = ["PageParseError", "parse_article_page", "parse_search_page"]
