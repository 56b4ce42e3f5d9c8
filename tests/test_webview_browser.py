"""The web view as a person uses it: a real headless Chromium (Debian's chromium and
chromium-driver, through Selenium) against `fxcrawl serve` on the fixture crawl's store.

Each page is kept as a screenshot in test-artifacts/browser/ (gitignored).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import IN_CI, ROOT, article_item
from test_cli_search import CRAWL
from test_pipelines_fulltext import store_items

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
SCRIPT_TITLE = '<script>document.title="pwned"</script>现代金融 <img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`fxcrawl serve` on a replay crawl of the bundled site plus one hostile title."""
    if not (CHROMIUM and DRIVER):
        why = "Debian's chromium and chromium-driver are not installed (apt-get install -y chromium chromium-driver)"
        if IN_CI:
            pytest.fail(f"CI=true and {why}")
        pytest.skip(why)
    tmp = tmp_path_factory.mktemp("browser")
    db = f"sqlite:///{tmp / 'fx.db'}"
    crawl = subprocess.run(
        [*CRAWL, "--replay", "--db", db, "--log-level", "WARNING", "-s", f"FXCRAWL_SPOOL_DIR={tmp / 'spool'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert crawl.returncode == 0, crawl.stderr
    hostile = "https://www.fx168news.com/article/999999"
    store_items(db, [article_item(hostile, title=SCRIPT_TITLE, body=["<script>alert(2)</script>正文"])])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "fxcrawl.cli", "serve", "--db", db, "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[WebDriver]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,800", "--lang=zh-CN"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    driver.set_page_load_timeout(30)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def snap(driver: WebDriver, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 1000
    return path


def no_alert(driver: WebDriver) -> bool:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        driver.switch_to.alert  # noqa: B018
    except NoAlertPresentException:
        return True
    return False


def navigating(driver: WebDriver, action: Callable[[], object]) -> None:
    """Do what loads a new page, then wait until the old one is gone: an element looked up in
    between may belong to the old page and go stale under the test (seen once in CI)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    action()
    WebDriverWait(driver, 10).until(expected_conditions.staleness_of(old))


def test_search_for_a_word_from_the_seed_then_open_an_article(server: str, browser: WebDriver) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = browser
    driver.get(server + "/")
    box = driver.find_element(By.NAME, "q")
    navigating(driver, lambda: box.send_keys("现代", Keys.ENTER))
    results = driver.find_elements(By.CSS_SELECTOR, "#results .result")
    assert len(results) == 20
    marks = driver.find_elements(By.CSS_SELECTOR, "#results mark")
    assert marks and {m.text for m in marks} == {"现代"}
    assert "现代" in driver.title
    snap(driver, "1-search")
    first = results[0].find_element(By.CSS_SELECTOR, "a.title")
    title = first.text
    navigating(driver, first.click)
    assert driver.find_element(By.ID, "title").text == title
    href = driver.find_element(By.LINK_TEXT, "原文 original").get_attribute("href")
    assert href is not None and href.startswith("https://www.fx168news.com/article/")
    snap(driver, "2-article")


def test_page_through_the_article_list(server: str, browser: WebDriver) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(server + "/articles?limit=10")
    seen: list[str] = []
    for page in range(3):
        rows = driver.find_elements(By.CSS_SELECTOR, "#articles tbody tr")
        assert len(rows) == 10
        seen += [row.find_element(By.TAG_NAME, "td").text for row in rows]
        snap(driver, f"3-articles-page-{page + 1}")
        navigating(driver, driver.find_element(By.CSS_SELECTOR, "a.next").click)
    assert len(set(seen)) == 30


def test_a_title_holding_a_script_shows_as_text(server: str, browser: WebDriver) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(server + "/search?q=" + "现代金融")
    link = next(a for a in driver.find_elements(By.CSS_SELECTOR, "#results a.title") if a.text.startswith("<script>"))
    assert link.text == SCRIPT_TITLE
    navigating(driver, link.click)
    assert driver.find_element(By.ID, "title").text == SCRIPT_TITLE
    assert driver.title != "pwned" and no_alert(driver)
    assert driver.find_elements(By.CSS_SELECTOR, "main img, main script") == []
    snap(driver, "4-script-title")
