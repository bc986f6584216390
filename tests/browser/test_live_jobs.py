"""The page follows its photos' jobs over one server-sent event stream, not by polling each
job (issue 16, item 5), against a real ``imgrec serve`` with the real model."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, Request, expect
from tests.conftest import DevPhoto
from tests.helpers.server import RunningServer, run_server

PHOTOS = ("n01820546_lorikeet.JPEG", "n02007558_flamingo.JPEG", "n02077923_sea_lion.JPEG")
ANSWER_TIMEOUT_MS = 90_000
JOB_POLL = re.compile(r"/api/v1/jobs/[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(tmp_path_factory.mktemp("live-jobs") / "state", "--workers", "1") as srv:
        yield srv


@pytest.mark.browser
def test_photos_are_answered_through_the_event_stream(
    server: RunningServer, page: Page, dev_photos: list[DevPhoto],
) -> None:
    chosen = [p for p in dev_photos if p.path.name in PHOTOS]
    requests: list[str] = []
    page.on("request", lambda r: requests.append(_path(r)))
    page.goto(server.url)
    page.set_input_files("#file-input", [str(p.path) for p in chosen])

    for photo in chosen:
        card = page.locator(f'li.card[data-file="{photo.path.name}"]')
        expect(card).to_have_attribute("data-status", "classified", timeout=ANSWER_TIMEOUT_MS)
        expect(card.locator(".top1 .label")).to_have_text(photo.name)
    assert any(p.startswith("/api/v1/job-events?id=") for p in requests), requests
    polls = [p for p in requests if JOB_POLL.search(p)]
    assert polls == [], f"the page polled jobs: {polls}"


def _path(request: Request) -> str:
    url = request.url
    return url[url.index("/", len("http://")):]
