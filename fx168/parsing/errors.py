"""The one error a parser raises: the page is not the kind of page it was asked to read."""


class PageParseError(ValueError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{reason} ({url})")
        self.url = url
        self.reason = reason
