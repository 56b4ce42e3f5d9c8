"""Keep passwords out of everything fxcrawl logs or writes down.

Database URLs carry their password (postgresql+psycopg://fxcrawl:PASSWORD@db/fxcrawl), and a
URL travels: through Scrapy settings, into exception messages, into log lines at DEBUG. Rather
than trust every one of those places, a log record factory rewrites each record as it is
made, so every handler (Scrapy's root handler, pytest's, a file) only ever sees the redacted
text:

- any ``scheme://user:password@`` becomes ``scheme://user:***@``;
- a password registered by the code that holds it (``storage.db.Database`` registers its
  URL's) is masked wherever it appears, with or without its URL.

The same ``redact_text`` serves text that is written rather than logged (spool files).
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from typing import Any
from urllib.parse import quote

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

MASK = "***"
#: scheme://user:password@ — the user part may be empty (redis://:password@host).
_URL_CREDENTIALS = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@'\"]*:)([^\s@'\"]+)@")
#: Registered passwords shorter than this are left to the URL pattern: masking every 'pw' in
#: every log line would mangle the log and hide nothing.
MIN_SECRET_LENGTH = 4

_secrets: set[str] = set()
_lock = threading.Lock()
_installed = False


def redact_text(text: str) -> str:
    """The text with registered passwords and URL credentials replaced by ***."""
    for secret in sorted(_secrets, key=len, reverse=True):  # whole secrets first, so no part is left
        if secret in text:
            text = text.replace(secret, MASK)
    if "://" in text:
        text = _URL_CREDENTIALS.sub(lambda m: m.group(1) + MASK + "@", text)
    return text


def protect(secret: str | None) -> None:
    """Mask this secret (and its percent-encoded spelling) in every log record from now on."""
    if not secret or len(secret) < MIN_SECRET_LENGTH:
        return
    with _lock:
        _secrets.update({secret, quote(secret, safe="")})
    install()


def protect_url(url: str | None) -> None:
    """Mask the password of this URL (if it has one) in every log record from now on."""
    if not url:
        return
    install()
    try:
        password = make_url(url).password
    except ArgumentError:  # not a URL SQLAlchemy reads; the pattern still covers it
        return
    protect(str(password) if password is not None else None)


def install() -> None:
    """Redact every log record of this process from now on (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            if _will_be_handled(record):
                redact_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True


def _will_be_handled(record: logging.LogRecord) -> bool:
    """Does any handler take records of this level from this logger? Scrapy filters by level at
    its handler, not at the loggers, so DEBUG records (one per dropped item, with the item in
    its message) are made and then discarded; formatting those to redact them was most of what
    logging cost a crawl."""
    logger: logging.Logger | None = logging.getLogger(record.name)
    found = False
    while logger is not None:
        for handler in logger.handlers:
            found = True
            if record.levelno >= handler.level:
                return True
        logger = logger.parent if logger.propagate else None
    last_resort = logging.lastResort
    return not found and last_resort is not None and record.levelno >= last_resort.level


def redact_record(record: logging.LogRecord) -> None:
    """Rewrite a record's message (and its traceback text) if they show a secret."""
    try:
        message = record.getMessage()
    except Exception:  # a malformed record: logging reports it as such when it is emitted
        return
    safe = redact_text(message)
    if safe != message:
        record.msg, record.args = safe, None
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        safe = redact_text(text)
        if safe != text:
            record.exc_text = safe  # formatters use exc_text as it is
