"""The WARC archive (ISO 28500): every response a crawl receives, and the request that asked for
it, kept as fetched so that anything stored can be re-derived from it without the network.

Pure storage (warcio, no Scrapy): the crawler hands over ``Exchange`` values; the store's writer
thread writes them (``ArchiveWriter``) before it commits the rows that point to them, so an
article's ``warc_file``/``warc_offset`` always names a record already on disk. Each record is
one gzip member, so a reader can seek straight to an article's record and a damaged member
costs only itself (``reader``). Files rotate per run and by size (``files``, ``warcfiles``), on
a long crawl written by a child process off the crawl's interpreter lock (``child``); retention
prunes whole files of old runs (``retention``).
"""

from storage.archive.files import archive_dir_for, archive_files, file_name, parse_file_name
from storage.archive.reader import ArchivedPage, ReadReport, iter_pages, read_page, read_payload
from storage.archive.records import Exchange, Location, payload_digest
from storage.archive.retention import PruneResult, prune
from storage.archive.writer import ArchivePolicy, ArchiveWriter

__all__ = [
    "ArchivePolicy",
    "ArchiveWriter",
    "ArchivedPage",
    "Exchange",
    "Location",
    "PruneResult",
    "ReadReport",
    "archive_dir_for",
    "archive_files",
    "file_name",
    "iter_pages",
    "parse_file_name",
    "payload_digest",
    "prune",
    "read_page",
    "read_payload",
]
