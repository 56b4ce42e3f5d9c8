"""The JSON API's envelope ({"code": 0, "data": {"items": [...]}}) and its refusals."""

from __future__ import annotations

import json
from typing import Any

from fx168 import site
from fx168.parsing.errors import PageParseError
from fx168.parsing.nextdata import ShapeError, dig


class ApiRefused(PageParseError):
    """The API turned the call away (no current ``_pcc`` token): fetch a new token, call again."""


def api_items(body: str, url: str) -> Any:
    try:
        data = json.loads(body)
    except ValueError:
        raise PageParseError(url, "API answer is not JSON") from None
    if not isinstance(data, dict):
        raise PageParseError(url, "API answer is not a JSON object")
    if data.get("code", site.API_OK) != site.API_OK:
        raise ApiRefused(url, f"API refused the call: code {data.get('code')!r} {data.get('msg', '')!s}".strip())
    try:
        return dig(data, site.API_ITEMS_PATH)
    except ShapeError as exc:
        raise PageParseError(url, f"unexpected API answer: {exc}") from None
