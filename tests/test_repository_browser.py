"""The repository's pages in a real browser (headless Chromium via Playwright) against a real
``synthmed serve`` process: catalogue, search, filters, dataset page, gallery and download link.

Skipped when Playwright or ``/usr/bin/chromium`` is missing (CI installs Chromium).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} not found: install Debian's chromium", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

from playwright.sync_api import Browser, Page, expect  # noqa: E402
from repository_support import make_dataset, serve_subprocess  # noqa: E402

from synthmed.repository.catalogue import Catalogue  # noqa: E402
from synthmed.repository.client import publish  # noqa: E402

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
FUNDUS = {
    "title": "Browser fundus",
    "license": "CC-BY-4.0",
    "domain": "retina",
    "modality": "fundus photography",
    "source": "phantom eyes",
}
CELLS = {
    "title": "Browser cells",
    "license": "CC0-1.0",
    "domain": "microscopy",
    "modality": "brightfield",
    "source": "phantom tissue",
}

# True once every image matching the selector has loaded with real pixels (not a broken icon).
LOADED = "[...document.querySelectorAll('{}')].every(i => i.complete && i.naturalWidth > 0)"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``synthmed serve`` process holding the two datasets; yields its URL."""
    root = tmp_path_factory.mktemp("repo")
    with serve_subprocess(root) as url:
        token = Catalogue(root / "catalogue.sqlite").create_token("alice")
        publish(make_dataset(root / "fundus", n=3, size=64, seed=1), url, token, FUNDUS)
        publish(make_dataset(root / "cells", n=2, size=32, seed=2), url, token, CELLS)
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def test_search_then_dataset_page(site: str, page: Page, tmp_path: Path) -> None:
    page.goto(f"{site}/")
    cards = page.locator("article.card")
    expect(cards).to_have_count(2)
    expect(cards.filter(has_text="Browser fundus")).to_have_count(1)
    expect(cards.filter(has_text="Browser cells")).to_have_count(1)
    page.wait_for_function(LOADED.format("article.card img"))  # thumbnails, lazily loaded

    page.fill("input[name=q]", "retina")
    page.click("button:has-text('Search')")
    page.wait_for_url("**/?q=retina*")
    expect(cards).to_have_count(1)
    expect(cards).to_contain_text("Browser fundus")

    cards.first.locator("h2 a").click()
    page.wait_for_url("**/datasets/browser-fundus/1")
    expect(page.locator("h1")).to_have_text("Browser fundus")

    images = page.locator("#gallery img")
    expect(images).to_have_count(9)  # three pairs x image, mask, overlay
    page.wait_for_load_state("load")
    loaded = images.evaluate_all("els => els.map(i => i.complete && i.naturalWidth > 0)")
    assert loaded == [True] * 9, f"gallery images that did not load: {loaded}"

    card = page.locator("table#card")
    expect(card.locator("tr", has_text="Domain")).to_contain_text("retina")
    href = page.locator("a.download").get_attribute("href")
    assert href is not None and href.endswith("/download")
    expect(page.locator("code#sha256")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))

    shot = tmp_path / "repository-dataset-page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.is_file() and shot.stat().st_size > 0


def test_domain_filter(site: str, page: Page) -> None:
    page.goto(f"{site}/")
    page.select_option("select[name=domain]", "microscopy")
    page.click("button:has-text('Search')")
    page.wait_for_url("**/?*domain=microscopy*")
    cards = page.locator("article.card")
    expect(cards).to_have_count(1)
    expect(cards).to_contain_text("Browser cells")
    expect(page.locator("select[name=domain]")).to_have_value("microscopy")
