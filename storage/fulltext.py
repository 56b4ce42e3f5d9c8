"""Chinese full-text search inside the database: SQLite FTS5 and PostgreSQL tsvector + GIN.

Chinese has no spaces, so the text is analysed here, in Python, the way Lucene's CJKAnalyzer
does it, and the database only ever sees ready-made tokens separated by spaces:

- NFKC, then lower case;
- a run of CJK characters (Han, kana, Hangul) becomes its overlapping bigrams, plus its last
  character alone (a one-character run is just that character), so that a one-character query
  is a prefix query (``现*``) that finds every occurrence of the character;
- a run of other letters and digits (``GDP``, ``2023``, ``café``) is one token;
- everything else separates tokens.

A query term of CJK characters is the AND of its bigrams, and for three or more characters the
term itself is then checked as a substring of the title or body (``LIKE``) on the few rows the
index let through: the answer is exactly a substring scan's, without phrase positions (which
PostgreSQL caps at 16,383 per document). A Latin word or number is one token, so it matches
whole words, case-insensitively. A quoted phrase is all its tokens plus the phrase as a
case-insensitive substring.

Newest first is the index's own order, so it costs the same for common and rare words:

- SQLite: a contentless FTS5 table ``article_fts`` whose rowid is
  ``seconds since 2000 (published_at) << 31 | seq`` — FTS5 walks its doclists in rowid order
  and stops after the first page. ``article_fts_live`` maps the live rowid of each article
  (``seq`` never repeats: AUTOINCREMENT); a revised article gets a new rowid and its old entry
  is left in the index as garbage that no live row points at (contentless tables cannot delete
  without the old text; SQLite 3.40 has no ``contentless_delete``);
- PostgreSQL: ``article_search`` (article id, source, published_at, tsvector of the 'simple'
  configuration over the tokens) with a GIN index on the vector and a b-tree on
  ``(published_at DESC NULLS LAST, article_id DESC)``: the planner walks the newest rows for a
  common word and goes through GIN for a rare one.

Relevance (``rank=True``) scores only the :data:`RANK_CANDIDATES` newest matches (bm25 on
SQLite, ts_rank on PostgreSQL), so a word in half the store costs no more than a rare one.
"""

from __future__ import annotations

import re
import unicodedata
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, text
from sqlalchemy.orm import Session

from storage.db import select_in
from storage.models import Article, Source, UTCDateTime
from storage.queries import article_json

#: How many of the newest matches relevance ranking scores.
RANK_CANDIDATES = 1000
#: PostgreSQL, newest first: the newest rows read first (a common word's page is there); what
#: share of them matched says whether walking on (at most WALK_ROWS) or sorting GIN's matches is
#: cheaper.
PROBE_ROWS = 200
WALK_ROWS = 5_000
#: Tables (and FTS5 shadow tables) the index owns; they are not in the models.
INDEX_TABLES = frozenset(
    {
        "article_fts",
        "article_fts_data",
        "article_fts_idx",
        "article_fts_config",
        "article_fts_docsize",
        "article_fts_content",
        "article_fts_live",
        "article_search",
        "sqlite_sequence",
    }
)

_CJK = (
    "\u1100-\u11ff\u3040-\u309f\u30a0-\u30ff\u3131-\u318e\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
_CJK_RUN = f"[{_CJK}]+"
#: A CJK run, or a run of other letters and digits (\w without underscore and CJK).
_RUNS = re.compile(f"({_CJK_RUN})|((?:(?![{_CJK}])[^\\W_])+)")
_IS_CJK = re.compile(f"[{_CJK}]")
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_SEQ_BITS = 31
_MAX_KEY_SECONDS = (1 << 32) - 1


def normalize(value: str) -> str:
    return unicodedata.normalize("NFKC", value).lower()


def _split(value: str) -> list[tuple[str, str]]:
    """(cjk, latin) runs of ``value``, each run NFKC-normalised and lower-cased on its own.

    Normalising run by run, not the whole text, matters for speed: Chinese text is full of
    full-width punctuation, which sends NFKC down its slow path (about 1 ms for a
    1,000-character body), while a run of ideographs is normally already in NFKC (checked in
    microseconds). Punctuation separates runs whether normalised or not.
    """
    out: list[tuple[str, str]] = []
    for cjk, latin in _RUNS.findall(value):
        run = cjk or latin
        if cjk and unicodedata.is_normalized("NFKC", run):
            out.append((cjk, ""))
            continue
        folded = (run if run.isascii() else unicodedata.normalize("NFKC", run)).lower()
        if latin and folded.isascii() and folded.isalnum():
            out.append(("", folded))
        else:
            out.extend(_RUNS.findall(folded))
    return out


def runs(value: str) -> list[tuple[str, bool]]:
    """The text's runs as (normalised run, is_cjk)."""
    return [(cjk or latin, bool(cjk)) for cjk, latin in _split(value)]


def analyze(value: str) -> list[str]:
    """Index tokens: CJK bigrams plus each run's last character, Latin words and numbers whole."""
    tokens: list[str] = []
    for cjk, latin in _split(value):
        if cjk:
            tokens.extend([cjk[i : i + 2] for i in range(len(cjk) - 1)])
            tokens.append(cjk[-1])
        else:
            tokens.append(latin)
    return tokens


def document(title: str, body: str) -> str:
    """What the index stores for an article: analyze()'s tokens, space-separated (the same
    multiset; the order differs, which neither index looks at). This runs for every article the
    store writes, on its writer thread, so it is built with C-level steps: all CJK runs joined
    by NUL and turned into bigrams at once (:func:`_bigram_text`), not run by run."""
    cjk_runs: list[str] = []
    latin: list[str] = []
    for cjk, word in _split(f"{title}\n{body}"):
        if cjk:
            cjk_runs.append(cjk)
        else:
            latin.append(word)
    if cjk_runs:
        latin.insert(0, _bigram_text("\x00".join(cjk_runs)))
    return " ".join(latin)


#: A bigram that spans two runs, with the next one: ``X\0 \0Y`` (see _bigram_text).
_SEAM = re.compile("\x00 \x00.", re.DOTALL)
_SPACE = array("I", b" \x00\x00\x00")


def _bigram_text(runs: str) -> str:
    """``'ABC\\0D'`` -> ``'AB BC C D'``: every run's bigrams and its last character.

    The text's code points are interleaved with a copy shifted by one and a space (array slice
    assignment: no Python object per bigram), which makes every pair, then the pairs that span
    a NUL are cut out, leaving each run's last character on its own. Measured on the generated
    articles: 50 µs an article against 115 µs for a join of bigrams run by run."""
    codes = array("I", runs.encode("utf-32-le"))
    n = len(codes)
    if n < 2:
        return runs
    pairs = _SPACE * (3 * n - 2)
    pairs[0 : 3 * n - 3 : 3] = codes[:-1]
    pairs[1 : 3 * n - 3 : 3] = codes[1:]
    pairs[-1] = codes[-1]
    return _SEAM.sub("", pairs.tobytes().decode("utf-32-le"))


# -- queries -------------------------------------------------------------------------------


@dataclass
class Query:
    """A parsed query: tokens that must all be present, prefixes (single CJK characters) that
    must each start a token, and substrings the title or body must contain."""

    text: str
    tokens: list[str] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    substrings: list[str] = field(default_factory=list)
    #: Whole-case-insensitive substrings (quoted phrases); the others are CJK, which has no case.
    phrases: list[str] = field(default_factory=list)
    #: What a snippet highlights: CJK runs and Latin words, as (normalised text, is_cjk).
    highlights: list[tuple[str, bool]] = field(default_factory=list)

    def _add_run(self, run: str, cjk: bool) -> None:
        self.highlights.append((run, cjk))
        if not cjk:
            self.tokens.append(run)
        elif len(run) == 1:
            self.prefixes.append(run)
        else:
            self.tokens.extend(run[i : i + 2] for i in range(len(run) - 1))
            if len(run) > 2:
                self.substrings.append(run)

    def fts5(self) -> str:
        parts = [f'"{t}"' for t in dict.fromkeys(self.tokens)] + [f'"{p}"*' for p in dict.fromkeys(self.prefixes)]
        return " AND ".join(parts)

    def tsquery(self) -> str:
        parts = [f"'{t}'" for t in dict.fromkeys(self.tokens)] + [f"'{p}':*" for p in dict.fromkeys(self.prefixes)]
        return " & ".join(parts)


_QUERY_TERMS = re.compile(r'"([^"]*)"|(\S+)')


def parse_query(value: str) -> Query:
    """Terms separated by spaces are ANDed; "quoted text" is a phrase. Raises ValueError when
    the query holds nothing to search for (only punctuation)."""
    query = Query(value)
    for quoted, word in _QUERY_TERMS.findall(value):
        term_runs = runs(quoted or word)
        for run, cjk in term_runs:
            query._add_run(run, cjk)
        if quoted and len(term_runs) > 1:
            query.phrases.append(" ".join(normalize(quoted).split()))
    if not query.tokens and not query.prefixes:
        raise ValueError(f"nothing to search for in {value!r}: give words, numbers or Chinese characters")
    return query


# -- the index's tables --------------------------------------------------------------------

_SQLITE_DDL = (
    "CREATE VIRTUAL TABLE article_fts USING fts5(document, content='', tokenize='ascii')",
    "CREATE TABLE article_fts_live ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " article_id INTEGER NOT NULL UNIQUE REFERENCES articles(id) ON DELETE CASCADE,"
    " fts_rowid INTEGER NOT NULL UNIQUE)",
)
_POSTGRES_DDL = (
    "CREATE TABLE article_search ("
    " article_id INTEGER PRIMARY KEY REFERENCES articles(id) ON DELETE CASCADE,"
    " source_id INTEGER NOT NULL,"
    " published_at TIMESTAMP WITH TIME ZONE,"
    " document TSVECTOR NOT NULL)",
    "CREATE INDEX ix_article_search_document ON article_search USING gin (document)",
    "CREATE INDEX ix_article_search_newest ON article_search (published_at DESC NULLS LAST, article_id DESC)",
)


def create(connection: Connection) -> None:
    """Create the index's tables (empty)."""
    for statement in _SQLITE_DDL if connection.dialect.name == "sqlite" else _POSTGRES_DDL:
        connection.exec_driver_sql(statement)


def drop(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("DROP TABLE IF EXISTS article_fts_live")
        connection.exec_driver_sql("DROP TABLE IF EXISTS article_fts")
    else:
        connection.exec_driver_sql("DROP TABLE IF EXISTS article_search")


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """For Alembic's comparisons: the index's tables are not the models'."""
    return not (type_ == "table" and name in INDEX_TABLES)


def rebuild(connection: Connection, batch: int = 2000) -> int:
    """Index every stored article (after create(); the migration's backfill). Returns the count."""
    last, count = 0, 0
    columns = select(Article.id, Article.title, Article.body, Article.published_at, Article.source_id)
    while True:
        rows = connection.execute(columns.where(Article.id > last).order_by(Article.id).limit(batch)).all()
        if not rows:
            return count
        _write(connection, rows)
        last, count = rows[-1][0], count + len(rows)


def bulk_build(connection: Connection) -> int:
    """Index every stored article into the empty index, faster than article by article:
    PostgreSQL builds the GIN index once at the end rather than maintaining it row by row;
    SQLite merges the FTS5 segments afterwards. The migration uses this."""
    postgres = connection.dialect.name != "sqlite"
    if postgres:
        connection.exec_driver_sql("DROP INDEX ix_article_search_document")
    count = rebuild(connection)
    if postgres:
        connection.exec_driver_sql(_POSTGRES_DDL[1])
    else:
        optimize(connection)
    return count


def index_articles(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Bring the index up to date with these just-written article rows (the store's batch calls
    this inside its transaction, so the index never disagrees with what was committed). The
    rows carry the text; only the ids the database gave them are read back."""
    if not rows:
        return
    ids = dict(select_in(session, (Article.url, Article.id), Article.url, [row["url"] for row in rows]))
    _write(
        session.connection(),
        [(ids[row["url"]], row["title"], row["body"], row["published_at"], row["source_id"]) for row in rows],
    )


def _key_seconds(published_at: datetime | None) -> int:
    if published_at is None:
        return 0
    seconds = int((published_at - _EPOCH).total_seconds())
    return min(max(seconds, 1), _MAX_KEY_SECONDS)


def _write(connection: Connection, rows: Sequence[Sequence[Any]]) -> None:
    if not rows:
        return
    if connection.dialect.name == "sqlite":
        _write_sqlite(connection, rows)
    else:
        connection.exec_driver_sql(
            "INSERT INTO article_search (article_id, source_id, published_at, document)"
            " VALUES (%s, %s, %s, to_tsvector('simple', %s))"
            " ON CONFLICT (article_id) DO UPDATE SET source_id = excluded.source_id,"
            " published_at = excluded.published_at, document = excluded.document",
            [(id_, source_id, published, _pg_document(title, body)) for id_, title, body, published, source_id in rows],
        )


#: PostgreSQL refuses a tsvector over 1 MB (about 12 bytes a token here): a document keeps at
#: most this many tokens.
_PG_TOKENS_MAX = 60_000


def _pg_document(title: str, body: str) -> str:
    """The tokens for to_tsvector; for a giant article (over 60,000 tokens, some 50,000
    characters of Chinese) each distinct token once, at most 60,000 of them, first seen first:
    such an article is then only partly searchable, where the alternative is a batch that
    never commits."""
    text = document(title, body)
    if len(text) < 3 * _PG_TOKENS_MAX:
        return text
    tokens = text.split()
    if len(tokens) <= _PG_TOKENS_MAX:
        return text
    return " ".join(list(dict.fromkeys(tokens))[:_PG_TOKENS_MAX])


def _write_sqlite(connection: Connection, rows: Sequence[Sequence[Any]]) -> None:
    ids = [row[0] for row in rows]
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        connection.exec_driver_sql(
            f"DELETE FROM article_fts_live WHERE article_id IN ({', '.join('?' * len(chunk))})", tuple(chunk)
        )
    seq = connection.exec_driver_sql("SELECT seq FROM sqlite_sequence WHERE name = 'article_fts_live'").scalar() or 0
    if seq + len(rows) >= 1 << _SEQ_BITS:
        raise OverflowError("article_fts_live: sequence exhausted; rebuild the index")
    live, docs = [], []
    for offset, (id_, title, body, published, _source) in enumerate(rows, start=seq + 1):
        rowid = _key_seconds(published) << _SEQ_BITS | offset
        live.append((offset, id_, rowid))
        docs.append((rowid, document(title, body)))
    connection.exec_driver_sql("INSERT INTO article_fts_live (seq, article_id, fts_rowid) VALUES (?, ?, ?)", live)
    # ascending rowids: FTS5 flushes its in-memory segment whenever a rowid is not above the last
    docs.sort()
    connection.exec_driver_sql("INSERT INTO article_fts (rowid, document) VALUES (?, ?)", docs)


def optimize(connection: Connection) -> None:
    """Merge the index's segments (SQLite: FTS5 'optimize'; PostgreSQL: VACUUM ANALYZE is the DBA's)."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("INSERT INTO article_fts (article_fts) VALUES ('optimize')")


def index_size(connection: Connection) -> dict[str, int]:
    """Bytes on disk of the index and of the articles table (with their indexes)."""
    if connection.dialect.name == "sqlite":

        def sqlite_bytes(names: Iterable[str]) -> int:
            marks = ", ".join("?" * len(list(names)))
            return int(
                connection.exec_driver_sql(
                    f"SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN ({marks})", tuple(names)
                ).scalar_one()
            )

        article_objects = [
            name
            for (name,) in connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE tbl_name = 'articles'"
            ).all()
        ]
        index_objects = [
            name
            for (name,) in connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE tbl_name LIKE 'article_fts%' AND type IN ('table', 'index')"
            ).all()
        ]
        return {"index": sqlite_bytes(index_objects), "articles": sqlite_bytes(article_objects)}
    return {
        "index": connection.exec_driver_sql("SELECT pg_total_relation_size('article_search')").scalar_one(),
        "articles": connection.exec_driver_sql("SELECT pg_total_relation_size('articles')").scalar_one(),
    }


# -- searching -----------------------------------------------------------------------------


@dataclass
class SearchPage:
    results: list[dict[str, Any]]
    next_cursor: str | None


def search(
    session: Session,
    query: str | Query,
    *,
    source: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 20,
    rank: bool = False,
    cursor: str | None = None,
) -> SearchPage:
    """Articles matching every term, newest first (or by relevance among the newest
    RANK_CANDIDATES matches), each with a highlighted snippet. ``cursor`` continues a previous
    page (its ``next_cursor``). Raises ValueError on an empty query or a bad cursor."""
    parsed = query if isinstance(query, Query) else parse_query(query)
    source_id = None
    if source is not None:
        source_id = session.scalar(select(Source.id).where(Source.name == source))
        if source_id is None:
            return SearchPage([], None)
    finder = _SqliteFinder if session.get_bind().dialect.name == "sqlite" else _PostgresFinder
    ids, next_cursor = finder(parsed, source_id, since, until).find(session, limit, rank, cursor)
    if not ids:
        return SearchPage([], None)
    found = {
        article.id: (article, name)
        for article, name in session.execute(
            select(Article, Source.name)
            .join(Source, Article.source_id == Source.id)
            .where(Article.id.in_([id_ for id_, _ in ids]))
        )
    }
    results = []
    for id_, score in ids:
        article, name = found[id_]
        data = article_json(article, name)
        data["snippet"], data["snippet_marks"] = snippet(article.title, article.body, parsed)
        if rank:
            data["score"] = round(score, 4)
        results.append(data)
    return SearchPage(results, next_cursor)


class _Finder:
    def __init__(self, query: Query, source_id: int | None, since: datetime | None, until: datetime | None) -> None:
        self.query, self.source_id, self.since, self.until = query, source_id, since, until
        self.params: dict[str, Any] = {}

    def _dates(self, table: str) -> list[str]:
        """Exact date bounds on ``table``'s published_at (NULL is in neither)."""
        where = []
        if self.since is not None:
            where.append(f"{table}.published_at >= :since")
            self.params["since"] = self.since
        if self.until is not None:
            where.append(f"{table}.published_at < :until")
            self.params["until"] = self.until
        return where

    def _texts(self, article: str) -> list[str]:
        """The substring checks on the articles row (CJK terms of three or more characters, phrases)."""
        where = []
        for n, sub in enumerate(self.query.substrings):
            where.append(f"({article}.title LIKE :sub{n} ESCAPE '\\' OR {article}.body LIKE :sub{n} ESCAPE '\\')")
            self.params[f"sub{n}"] = "%" + _escape_like(sub) + "%"
        for n, phrase in enumerate(self.query.phrases):
            where.append(
                f"(lower({article}.title) LIKE :phr{n} ESCAPE '\\' OR lower({article}.body) LIKE :phr{n} ESCAPE '\\')"
            )
            self.params[f"phr{n}"] = "%" + _escape_like(phrase) + "%"
        return where

    def _execute(self, session: Session, sql: str) -> list[Any]:
        statement = text(sql).bindparams(
            *[bindparam(name, type_=UTCDateTime()) for name in ("since", "until") if name in self.params]
        )
        return list(session.execute(statement, self.params))

    def find(
        self, session: Session, limit: int, rank: bool, cursor: str | None
    ) -> tuple[list[tuple[int, float]], str | None]:
        raise NotImplementedError


class _SqliteFinder(_Finder):
    def find(
        self, session: Session, limit: int, rank: bool, cursor: str | None
    ) -> tuple[list[tuple[int, float]], str | None]:
        self.params["match"] = self.query.fts5()
        where = ["article_fts MATCH :match"]
        if self.since is not None:
            where.append("article_fts.rowid >= :lo")
            self.params["lo"] = _key_seconds(self.since) << _SEQ_BITS
        if self.until is not None:
            where.append("article_fts.rowid < :hi")
            self.params["hi"] = (_key_seconds(self.until) + 1) << _SEQ_BITS
        checks = self._dates("a") + self._texts("a")
        if self.source_id is not None:
            checks.append("a.source_id = :source_id")
            self.params["source_id"] = self.source_id
        join = " JOIN articles a ON a.id = l.article_id" if checks else ""
        where += checks
        if rank:
            offset = _offset(cursor)
            inner = (
                "SELECT l.article_id AS id, bm25(article_fts) AS score, article_fts.rowid AS k FROM article_fts"
                f" JOIN article_fts_live l ON l.fts_rowid = article_fts.rowid{join}"
                f" WHERE {' AND '.join(where)} ORDER BY article_fts.rowid DESC LIMIT {RANK_CANDIDATES}"
            )
            rows = self._execute(
                session, f"SELECT id, score FROM ({inner}) ORDER BY score, k DESC LIMIT {limit + 1} OFFSET {offset}"
            )
            more = len(rows) > limit
            return [(r[0], -r[1]) for r in rows[:limit]], (f"r{offset + limit}" if more else None)
        if cursor is not None:
            if not cursor.startswith("k") or not cursor[1:].isdigit():
                raise ValueError(f"bad cursor {cursor!r}")
            where.append("article_fts.rowid < :after")
            self.params["after"] = int(cursor[1:])
        rows = self._execute(
            session,
            "SELECT l.article_id, article_fts.rowid FROM article_fts"
            f" JOIN article_fts_live l ON l.fts_rowid = article_fts.rowid{join}"
            f" WHERE {' AND '.join(where)} ORDER BY article_fts.rowid DESC LIMIT {limit + 1}",
        )
        more = len(rows) > limit
        rows = rows[:limit]
        return [(r[0], 0.0) for r in rows], (f"k{rows[-1][1]}" if more else None)


class _PostgresFinder(_Finder):
    def find(
        self, session: Session, limit: int, rank: bool, cursor: str | None
    ) -> tuple[list[tuple[int, float]], str | None]:
        self.params["q"] = self.query.tsquery()
        filters = []
        if self.source_id is not None:
            filters.append("s.source_id = :source_id")
            self.params["source_id"] = self.source_id
        filters += self._dates("s")
        if rank:
            # the newest RANK_CANDIDATES matches, found as a page of newest-first results is,
            # then scored: ts_rank reads each candidate's document once
            offset = _offset(cursor)
            ids = [row[0] for row in self._newest(session, filters, RANK_CANDIDATES)]
            if not ids:
                return [], None
            self.params["ids"] = ids
            rows = self._execute(
                session,
                "SELECT s.article_id, ts_rank(s.document, to_tsquery('simple', :q)) AS score FROM article_search s"
                " WHERE s.article_id = ANY(:ids)",
            )
            newest = {id_: n for n, id_ in enumerate(ids)}
            ranked = sorted(rows, key=lambda row: (-row[1], newest[row[0]]))[offset : offset + limit + 1]
            more = len(ranked) > limit
            return [(r[0], float(r[1])) for r in ranked[:limit]], (f"r{offset + limit}" if more else None)
        if cursor is not None:
            filters.append(self._after(cursor))
        rows = self._newest(session, filters, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        if not more:
            return [(r[0], 0.0) for r in rows], None
        last_id, last_published = rows[-1]
        stamp = last_published.astimezone(UTC).isoformat() if last_published else ""
        return [(r[0], 0.0) for r in rows], f"p{stamp}|{last_id}"

    def _newest(self, session: Session, filters: list[str], wanted: int) -> list[Any]:
        """(article id, published_at) of the newest ``wanted`` matches, newest first.

        The plan is chosen here: PostgreSQL's estimate of a rare lexeme's frequency is a guess,
        and a wrong guess walks the whole table (seconds). The PROBE_ROWS newest rows are read
        first (a document read each): a common word fills a page there, and how many matched
        says how far a walk of the newest rows would go. Within WALK_ROWS, it walks; else (or
        when the walk falls short) GIN's matches are fetched and sorted (no document read: GIN
        answers a plain AND of lexemes exactly). The text checks (terms of three or more
        characters, phrases) read the article: they run on candidates in order, newest first,
        until enough are found."""
        match = "s.document @@ to_tsquery('simple', :q)"
        order = "ORDER BY s.published_at DESC NULLS LAST, s.article_id DESC"
        where = " AND ".join([match, *filters])
        texts = self._texts("a")
        check = f"EXISTS (SELECT 1 FROM articles a WHERE a.id = s.article_id AND {' AND '.join(texts)})"
        checks = f" AND {check}" if texts else ""

        def walk(rows: int) -> list[Any]:
            newest = (
                f"SELECT s.article_id, s.published_at, s.document FROM article_search s"
                f" WHERE {' AND '.join(filters) or 'TRUE'} {order} LIMIT {rows}"
            )
            return self._execute(
                session,
                f"SELECT s.article_id, s.published_at FROM ({newest}) s WHERE {match}{checks} {order} LIMIT {wanted}",
            )

        rows = walk(PROBE_ROWS)
        found = len(rows)
        if found < wanted and found and wanted * PROBE_ROWS / found <= WALK_ROWS:
            rows = walk(WALK_ROWS)  # common enough: the newest rows hold them, a walk away
        if len(rows) < wanted:  # rare (or the walk fell short): GIN's matches, sorted
            candidates = f"SELECT s.article_id, s.published_at FROM article_search s WHERE {where} {order}"
            with _gin_over_a_scan(session):
                rows = self._execute(
                    session,
                    f"SELECT s.article_id, s.published_at FROM ({candidates}) s WHERE TRUE{checks} {order}"
                    f" LIMIT {wanted}",
                )
        return rows

    def _after(self, cursor: str) -> str:
        try:
            stamp, id_text = cursor[1:].split("|")
            self.params["after_id"] = int(id_text)
            after = datetime.fromisoformat(stamp) if stamp else None
        except ValueError as exc:
            raise ValueError(f"bad cursor {cursor!r}") from exc
        if not cursor.startswith("p"):
            raise ValueError(f"bad cursor {cursor!r}")
        if after is None:
            return "(s.published_at IS NULL AND s.article_id < :after_id)"
        self.params["after_p"] = after
        return (
            "(s.published_at < :after_p OR (s.published_at = :after_p AND s.article_id < :after_id)"
            " OR s.published_at IS NULL)"
        )


@contextmanager
def _gin_over_a_scan(session: Session) -> Iterator[None]:
    """PostgreSQL's planner prices reading a document (~15 kB, stored out of line) like any
    column, so on a table it thinks small it reads every one rather than ask GIN (seconds on a
    large store): sequential scans are off for these statements (this transaction's setting,
    put back after)."""
    previous = session.execute(
        text("SELECT current_setting('enable_seqscan'), set_config('enable_seqscan', 'off', true)")
    ).scalar_one()
    try:
        yield
    finally:
        session.execute(text("SELECT set_config('enable_seqscan', :previous, true)"), {"previous": previous})


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.startswith("r") or not cursor[1:].isdigit():
        raise ValueError(f"bad cursor {cursor!r}")
    return int(cursor[1:])


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- snippets ------------------------------------------------------------------------------


def _latin_boundary(value: str, start: int, end: int) -> bool:
    def word_char(ch: str) -> bool:
        return ch.isalnum() and not _IS_CJK.match(ch)

    return (start == 0 or not word_char(value[start - 1])) and (end == len(value) or not word_char(value[end]))


def _hits(value: str, query: Query) -> list[tuple[int, int]]:
    """Where the query's terms occur in ``value`` (normalised text; same length as the original
    for the text this site serves, where NFKC changes nothing), merged and sorted."""
    folded = value.lower()  # same length for the text this site serves; NFKC would shift offsets
    spans: list[tuple[int, int]] = []
    for term, cjk in query.highlights:
        for match in re.finditer(re.escape(term), folded):
            if cjk or _latin_boundary(folded, match.start(), match.end()):
                spans.append((match.start(), match.end()))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def snippet(title: str, body: str, query: Query, width: int = 120) -> tuple[str, list[list[int]]]:
    """A passage of the body around the first hit (or its start), and where the hits are in it."""
    body_flat = " ".join(body.split())
    spans = _hits(body_flat, query)
    start = max(0, spans[0][0] - min(width // 3, 12)) if spans else 0  # a short lead: narrow columns show the hit
    end = min(len(body_flat), start + width)
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(body_flat) else ""
    passage = prefix + body_flat[start:end] + suffix
    shift = len(prefix) - start
    marks = [[s + shift, e + shift] for s, e in spans if s >= start and e <= end]  # whole hits only
    return passage, marks


def marked(passage: str, marks: Sequence[Sequence[int]], before: str = "【", after: str = "】") -> str:
    """The passage with each hit wrapped (the CLI's 【…】)."""
    out, last = [], 0
    for start, end in marks:
        out += [passage[last:start], before, passage[start:end], after]
        last = end
    out.append(passage[last:])
    return "".join(out)


def parts(passage: str, marks: Sequence[Sequence[int]]) -> list[tuple[str, bool]]:
    """The passage as (text, is_hit) pieces (the web view escapes each and marks the hits)."""
    out, last = [], 0
    for start, end in marks:
        out += [(passage[last:start], False), (passage[start:end], True)]
        last = end
    out.append((passage[last:], False))
    return [piece for piece in out if piece[0]]
