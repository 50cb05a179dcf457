"""The search page at ``GET /`` in a real browser: headless Chromium driven by Playwright.

The page is plain HTML and JavaScript that calls ``POST /v1/search``; these tests load it from
a running server, type a query, press Enter and read what the page shows. They skip where no
Chromium binary or no Playwright is found (a fresh clone), unless ``SBERT_REQUIRE_BROWSER=1``
(CI), where a missing browser fails them instead of skipping silently.

Chromium: ``$SBERT_CHROMIUM``, else ``chromium`` on the PATH (Debian: ``apt-get install
chromium``). ``SBERT_SAVE_SCREENSHOTS=1`` copies the screenshot to ``docs/img/``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serve.conftest import Server, start_server

ROOT = Path(__file__).resolve().parents[2]
KEY = "page-key"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SENTENCES = [
    "A man is playing a guitar.",
    "A woman is slicing an onion.",
    "The cat sleeps on the sofa.",
    "A child is riding a bicycle in the park.",
    "The stock market fell sharply today.",
    "Two dogs are running through a field.",
    "A chef is cooking pasta in the kitchen.",
    "It is raining heavily in the city.",
    "A student is reading a book in the library.",
    "The plane landed safely at the airport.",
]
TIMEOUT_MS = 60_000  # a search on a busy two-core machine


def _unavailable(reason: str) -> None:
    """Skip, or fail where CI requires the browser tests to run."""
    if os.environ.get("SBERT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"SBERT_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str:
    """The Chromium binary to drive, or a skip (a failure under SBERT_REQUIRE_BROWSER=1)."""
    if importlib.util.find_spec("playwright") is None:
        _unavailable("the page tests need the playwright package (sbert[test])")
    given = os.environ.get("SBERT_CHROMIUM")
    if given:
        if not Path(given).is_file():
            _unavailable(f"SBERT_CHROMIUM={given} is not a file")
        return given
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        _unavailable("no Chromium binary: install it (Debian: apt-get install chromium) or "
                     "point SBERT_CHROMIUM at one")
    return str(found)


@pytest.fixture(scope="module", autouse=True)
def chromium() -> str:
    """The browser's path, found before any server starts (autouse: a skip costs nothing)."""
    return chromium_path()


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Any]:
    """Headless Chromium (the system's binary, not Playwright's download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, headless=True,
                                              args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page that records uncaught JavaScript errors in ``page.errors``."""
    context = browser.new_context(viewport={"width": 1000, "height": 760})
    new = context.new_page()
    new.set_default_timeout(TIMEOUT_MS)
    new.errors = []
    new.on("pageerror", lambda err: new.errors.append(str(err)))
    yield new
    context.close()


def make_index(path: Path, encoder: Any, source: str) -> Path:
    from sbert.search.index import Index, model_identity

    index = Index.create(path, model=model_identity(encoder), dimension=encoder.dimension,
                         source=source)
    index.add_texts(SENTENCES, encoder,
                    metadata=[{"source": "demo", "n": i} for i in range(len(SENTENCES))])
    index.close()
    return path


@pytest.fixture(scope="module")
def minilm_server(minilm: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The bundled MiniLM (torch) with a ten-sentence index, no API key."""
    tmp = tmp_path_factory.mktemp("serve-page")
    index = make_index(tmp / "index", minilm, "all-MiniLM-L6-v2")
    server = start_server(["all-MiniLM-L6-v2", "--backend", "torch", "--index", str(index)],
                          tmp)
    yield server
    assert server.stop() == 0, server.output()


@pytest.fixture(scope="module")
def key_server(tiny_model_dir: Path, tiny_encoder: Any,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The tiny model with the same ten sentences, behind ``--api-key``."""
    tmp = tmp_path_factory.mktemp("serve-page-key")
    index = make_index(tmp / "index", tiny_encoder, str(tiny_model_dir))
    server = start_server([str(tiny_model_dir), "--model-name", "tiny", "--index", str(index),
                           "--api-key", KEY], tmp)
    yield server
    assert server.stop() == 0, server.output()


def search(page: Any, query: str) -> None:
    """Type ``query``, press Enter and wait until the page says how the search went."""
    page.fill("#query", query)
    page.press("#query", "Enter")
    page.wait_for_function(
        "() => { const s = document.getElementById('status');"
        " return s.className === 'error' || /results in/.test(s.textContent); }",
        timeout=TIMEOUT_MS)


@pytest.mark.slow
def test_search_page_finds_the_guitar(page: Any, minilm_server: Server,
                                      tmp_path: Path) -> None:
    """The page names the model and the index size, hides the key field on a server without
    a key, and a query typed and sent with Enter lists the nearest sentence first with its
    score and metadata."""
    page.goto(minilm_server.url + "/")
    assert page.title() == "sbert search · all-MiniLM-L6-v2"
    assert page.text_content("#model") == "all-MiniLM-L6-v2"
    assert page.text_content("#index-size") == f"{len(SENTENCES)} sentences"
    assert not page.is_visible("#key")

    search(page, "someone plays music")
    status = page.locator("#status")
    assert status.get_attribute("class") != "error", status.text_content()
    assert re.fullmatch(r"10 results in \d+ ms", status.text_content() or "")
    hits = page.locator("#results li.hit")
    assert hits.count() == len(SENTENCES)
    top = hits.first
    assert top.locator(".text").text_content() == "A man is playing a guitar."
    score = top.locator(".score").text_content() or ""
    assert re.fullmatch(r"0\.\d{3}", score), score
    assert float(score) > 0.3
    assert top.locator(".id").text_content() == "#1"
    assert json.loads(top.locator(".meta").text_content() or "") == {"source": "demo", "n": 0}
    scores = [float(s) for s in hits.locator(".score").all_text_contents()]
    assert scores == sorted(scores, reverse=True)
    assert page.errors == []

    shot = tmp_path / "search-page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 1000
    if os.environ.get("SBERT_SAVE_SCREENSHOTS") == "1":
        target = ROOT / "docs" / "img" / "search-page.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)


def test_key_field_and_wrong_key(page: Any, key_server: Server) -> None:
    """On a server with ``--api-key`` the page shows the key field; a wrong key shows the
    server's error message on the page (no results, no script error), and the right key then
    searches."""
    page.goto(key_server.url + "/")
    assert page.text_content("#model") == "tiny"
    assert page.is_visible("#key")

    page.fill("#key", "wrong-key")
    search(page, "a man plays the guitar")
    status = page.locator("#status")
    assert status.get_attribute("class") == "error"
    assert status.text_content() == "incorrect API key"
    assert page.locator("#results li").count() == 0

    page.fill("#key", KEY)
    search(page, "a man plays the guitar")
    assert status.get_attribute("class") != "error", status.text_content()
    assert page.locator("#results li.hit").count() == len(SENTENCES)
    assert page.errors == []


def test_no_key_sent_shows_the_error(page: Any, key_server: Server) -> None:
    """Searching on a keyed server with the key field left empty shows the 'no API key'
    message rather than failing silently."""
    page.goto(key_server.url + "/")
    search(page, "a dog runs")
    status = page.locator("#status")
    assert status.get_attribute("class") == "error"
    assert "no API key" in (status.text_content() or "")
    assert page.errors == []
