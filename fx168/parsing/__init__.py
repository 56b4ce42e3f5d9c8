"""Pure page parsers: (page, URL) in, typed records out. No Scrapy, no network, no database.

Every parser of a portal page reads the page's ``__NEXT_DATA__`` JSON first and its HTML
second, and says in the page record which path gave the records (``via``) and what differed
from the site description (``drift``).
"""

from fx168.parsing.api import ApiRefused
from fx168.parsing.article_page import parse_article_page
from fx168.parsing.channel_page import parse_channel_api, parse_channel_page
from fx168.parsing.errors import PageParseError
from fx168.parsing.express_page import parse_express_api, parse_express_page
from fx168.parsing.search_page import parse_search_page

__all__ = [
    "ApiRefused",
    "PageParseError",
    "parse_article_page",
    "parse_channel_api",
    "parse_channel_page",
    "parse_express_api",
    "parse_express_page",
    "parse_search_page",
]
