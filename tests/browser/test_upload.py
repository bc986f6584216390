"""Uploading photos in the page, against a real ``imgrec serve`` with the real model."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from tests.conftest import DevPhoto
from tests.helpers.server import RunningServer, run_server

from .conftest import PHONE

# Three dev photos MobileNetV2 labels correctly (and confidently) with its top-1.
PHOTOS = ("n01820546_lorikeet.JPEG", "n02007558_flamingo.JPEG", "n02077923_sea_lion.JPEG")
ANSWER_TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(tmp_path_factory.mktemp("page") / "state", "--workers", "1") as srv:
        yield srv


def _card(page: Page, name: str) -> Locator:
    return page.locator(f'li.card[data-file="{name}"]')


def test_get_root_serves_the_page_to_browsers_and_a_hint_to_programs(
    server: RunningServer,
) -> None:
    html = httpx.get(server.url, headers={"Accept": "text/html,application/xhtml+xml"})
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    assert '<input id="file-input"' in html.text
    plain = httpx.get(server.url)
    assert plain.headers["content-type"].startswith("text/plain")
    assert "POST" in plain.text and "/docs" in plain.text
    as_json = httpx.get(server.url, headers={"Accept": "application/json"})
    assert as_json.json()["docs"] == "/docs"
    for asset in ("/static/app.css", "/static/js/main.js", "/static/favicon.svg"):
        assert httpx.get(server.url + asset).status_code == 200, asset


@pytest.mark.browser
def test_three_photos_show_their_labels_and_download_as_csv(
    server: RunningServer, page: Page, dev_photos: list[DevPhoto], artifacts: Path,
) -> None:
    chosen = [p for p in dev_photos if p.path.name in PHOTOS]
    assert len(chosen) == len(PHOTOS)
    page.goto(server.url)
    expect(page.get_by_role("heading", name="Recognise photos")).to_be_visible()

    # The picker is a real button a keyboard reaches: Enter on it clicks the file input.
    # (Headless chromium shows the chooser for a synthetic key press only now and then, so the
    # keyboard path is checked up to the input's click, and the chooser is opened by mouse.)
    page.evaluate("document.getElementById('file-input')"
                  ".addEventListener('click', () => { window.pickedByKeyboard = true; })")
    page.focus("#pick")
    page.keyboard.press("Enter")
    page.wait_for_function("window.pickedByKeyboard === true")
    with page.expect_file_chooser() as chooser:
        page.click("#pick")
    chooser.value.set_files([str(p.path) for p in chosen])

    for photo in chosen:
        card = _card(page, photo.path.name)
        expect(card).to_have_attribute("data-status", "classified", timeout=ANSWER_TIMEOUT_MS)
        expect(card.locator(".top1 .label")).to_have_text(photo.name)
        expect(card.locator(".top5 li")).to_have_count(5)
        expect(card.locator(".badge")).to_have_text("Classified")
    expect(page.locator("#summary")).to_contain_text("3 classified")
    page.screenshot(path=str(artifacts / "upload-desktop.png"), full_page=True)

    with page.expect_download() as download:
        page.click("#download")
    with open(download.value.path(), newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["file", "label", "class_index", "probability"]
    by_file = {row["file"]: row for row in rows}
    for photo in chosen:
        row = by_file[photo.path.name]
        assert row["label"] == photo.name
        assert int(row["class_index"]) == photo.class_index
        assert 0.0 < float(row["probability"]) <= 1.0

    page.set_viewport_size(PHONE)
    page.wait_for_timeout(300)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page scrolls sideways at phone width ({width} px)"
    page.screenshot(path=str(artifacts / "upload-phone.png"), full_page=True)


@pytest.mark.browser
def test_a_text_file_shows_an_error_next_to_it(
    server: RunningServer, page: Page, tmp_path: Path, artifacts: Path,
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("Shopping list: eggs, milk, a photo of a cat.\n")
    page.goto(server.url)
    page.set_input_files("#file-input", str(notes))

    card = _card(page, "notes.txt")
    expect(card).to_have_attribute("data-status", "failed", timeout=ANSWER_TIMEOUT_MS)
    expect(card.locator(".badge")).to_have_text("Failed")
    expect(card.locator(".error-text")).to_contain_text("isn't an image")
    expect(page.locator("#download")).to_be_disabled()
    expect(page.locator("#announcer")).to_contain_text("notes.txt: failed")
    page.screenshot(path=str(artifacts / "upload-error.png"), full_page=True)


@pytest.mark.browser
def test_with_an_api_key_the_page_sends_the_key_it_is_given(
    browser: Browser, tmp_path: Path, dev_photos: list[DevPhoto], artifacts: Path,
) -> None:
    key = "correct-horse-battery"
    photo = next(p for p in dev_photos if p.path.name == PHOTOS[0])
    env = {"IMGREC_API_KEY": key}
    with run_server(tmp_path / "state", "--workers", "1", env=env) as server:
        # The browser's password prompt (HTTP Basic) opens the page; the key field wins after.
        context = browser.new_context(http_credentials={"username": "me", "password": key})
        try:
            page = context.new_page()
            page.goto(server.url)
            page.click("#settings summary")
            page.fill("#api-key", "wrong-key")
            page.click("#key-form button[type=submit]")
            page.set_input_files("#file-input", str(photo.path))
            card = _card(page, photo.path.name)
            expect(card).to_have_attribute("data-status", "failed", timeout=ANSWER_TIMEOUT_MS)
            expect(card.locator(".error-text")).to_contain_text("needs an API key")

            page.fill("#api-key", key)
            page.click("#key-form button[type=submit]")
            card.get_by_role("button", name="Try again").click()
            expect(card).to_have_attribute("data-status", "classified", timeout=ANSWER_TIMEOUT_MS)
            expect(card.locator(".top1 .label")).to_have_text(photo.name)
            page.screenshot(path=str(artifacts / "api-key.png"), full_page=True)
        finally:
            context.close()
