"""What storage reads of a configuration: Scrapy's settings have these methods, and so can a test's
dict-backed stand-in; storage needs nothing else of Scrapy."""

from __future__ import annotations

from typing import Any, Protocol


class Settings(Protocol):
    def get(self, name: str, default: Any = None) -> Any: ...

    def getint(self, name: str, default: int = 0) -> int: ...

    def getfloat(self, name: str, default: float = 0.0) -> float: ...
