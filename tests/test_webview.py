"""The web view and JSON API through Starlette's test client, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import article_item
from sqlalchemy import text
from sqlalchemy.exc import OperationalError, ProgrammingError
from starlette.applications import Starlette
from starlette.testclient import TestClient
from test_pipelines_fulltext import generated_items, store_items

from fxcrawl.cli import build_parser
from fxcrawl.web.app import CSP, create_app
from storage import fulltext
from storage.db import Database

SCRIPT_TITLE = '<script>alert("x")</script>现代标题'


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    url = "https://www.fx168news.com/article/5"
    items = generated_items(60, seed=3)
    items.append(article_item("https://www.fx168news.com/article/6", title=SCRIPT_TITLE, body=["<b>现代</b> & 正文"]))
    items.append(article_item(url, title="初版", body=["第一版正文。"]))
    store_items(database_url, items)
    store_items(database_url, [article_item(url, title="二版", body=["第一版正文。", "新增的一段。"])])
    app = create_app(database_url)
    with TestClient(app) as client:
        yield client
    app.state.engine.dispose()


def test_every_page_renders_with_a_strict_content_security_policy(client: TestClient) -> None:
    for path in ("/", "/search?q=现代", "/search?q=现代&rank=1", "/articles", "/articles?source=金融界", "/sources"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"] == CSP
        assert "default-src 'none'" in CSP and "script-src" not in CSP
        assert response.headers["x-content-type-options"] == "nosniff"
    for path in ("/runs", "/hot", "/api/articles", "/api/sources", "/api/runs", "/api/search?q=gdp"):
        assert client.get(path).status_code == 200, path
    assert client.get("/articles/424242").status_code == 404
    assert client.get("/api/articles/424242").json() == {"error": "no article 424242"}
    assert client.get("/api/search?q=，").status_code == 400
    assert client.get("/articles?since=yesterday").status_code == 400
    assert client.get("/api/articles?cursor=garbage").status_code == 400
    assert client.post("/api/articles").status_code == 405


def test_everything_shown_is_escaped(client: TestClient) -> None:
    for path in ("/search?q=现代标题", "/articles?limit=200", "/articles/" + str(_id_of(client, SCRIPT_TITLE))):
        html = client.get(path).text
        assert "<script>" not in html and "<b>" not in html, path
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;现代标题" in html, path
    html = client.get("/search", params={"q": '"><script>x</script>'}).text
    assert "<script>x" not in html


def _id_of(client: TestClient, title: str) -> int:
    items = client.get("/api/articles", params={"limit": 200}).json()["items"]
    return next(a["id"] for a in items if a["title"] == title)


def test_api_articles_pages_through_everything_newest_first(client: TestClient) -> None:
    everything = client.get("/api/articles", params={"limit": 200}).json()["items"]
    assert len(everything) == 62
    paged, cursor = [], None
    while True:
        body = client.get("/api/articles", params={"limit": 7, **({"cursor": cursor} if cursor else {})}).json()
        paged += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [a["id"] for a in paged] == [a["id"] for a in everything]
    dated = [a["published_at"] for a in paged if a["published_at"]]
    assert dated == sorted(dated, reverse=True)
    assert [a["published_at"] is None for a in paged] == sorted(a["published_at"] is None for a in paged)
    one_source = client.get("/api/articles", params={"source": "金融界", "limit": 200}).json()["items"]
    assert one_source and {a["source"] for a in one_source} == {"金融界"}
    day = client.get("/api/articles", params={"since": "2023-03-01", "until": "2023-03-31", "limit": 200}).json()
    assert day["items"] and {a["published_at"][:7] for a in day["items"]} == {"2023-03"}


def test_api_search_pages_equal_the_search_module(client: TestClient, database_url: str) -> None:
    database = Database(database_url)
    with database.session() as session:
        expected = [r["id"] for r in fulltext.search(session, "现代 金融", limit=500).results]
    database.dispose()
    paged, cursor = [], None
    while True:
        params = {"q": "现代 金融", "limit": 4, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/search", params=params).json()
        paged += [r["id"] for r in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert paged == expected and len(expected) > 4
    ranked = client.get("/api/search", params={"q": "现代", "rank": "1"}).json()["items"]
    assert all("score" in r for r in ranked)


def test_an_article_shows_its_revisions_with_a_diff(client: TestClient) -> None:
    article = client.get(f"/api/articles/{_id_of(client, '二版')}").json()
    assert article["revision"] == 2 and article["body"] == "第一版正文。\n\n新增的一段。"
    (old,) = article["revisions"]
    assert {"op": "-", "text": "标题: 初版"} in old["diff"] and {"op": "+", "text": "新增的一段。"} in old["diff"]
    html = client.get(f"/articles/{article['id']}").text
    assert "新增的一段。" in html and 'href="https://www.fx168news.com/article/5"' in html


def test_the_web_view_cannot_write(client: TestClient) -> None:
    assert isinstance(client.app, Starlette)
    engine = client.app.state.engine
    with pytest.raises((OperationalError, ProgrammingError, Exception)) as caught, engine.begin() as connection:
        connection.execute(text("DELETE FROM articles"))
    assert "read" in str(caught.value).lower()


def test_serve_binds_loopback_by_default_and_refuses_a_store_it_cannot_read(tmp_path) -> None:
    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1"
    with pytest.raises(SystemExit, match="no database"):
        create_app(f"sqlite:///{tmp_path / 'missing.db'}")
    Database(f"sqlite:///{tmp_path / 'empty.db'}").engine.connect().close()
    with pytest.raises(SystemExit, match="fxcrawl db upgrade"):
        create_app(f"sqlite:///{tmp_path / 'empty.db'}")
