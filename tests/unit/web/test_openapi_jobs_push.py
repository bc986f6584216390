"""The OpenAPI schema documents webhooks, job events and dead letters (issue 16, item 9)."""

from __future__ import annotations

from typing import Any

import pytest

from imgrec.config import Settings
from imgrec.web.app import create_app


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return create_app(Settings()).openapi()


@pytest.mark.parametrize(("path", "method", "statuses"), [
    ("/api/v1/jobs", "post", {"202", "400"}),
    ("/api/v1/jobs/{job_id}/events", "get", {"200", "404", "410", "503"}),
    ("/api/v1/job-events", "get", {"200", "400", "503"}),
    ("/api/v1/dead-letters", "get", {"200", "503"}),
    ("/api/v1/dead-letters", "delete", {"200", "503"}),
    ("/api/v1/dead-letters/{request_id}", "get", {"200", "404", "503"}),
    ("/api/v1/dead-letters/{request_id}", "delete", {"200", "404", "503"}),
    ("/api/v1/dead-letters/{request_id}/replay", "post", {"202", "404", "410", "503"}),
])
def test_each_new_route_documents_its_statuses(
    schema: dict[str, Any], path: str, method: str, statuses: set[str]
) -> None:
    assert statuses <= set(schema["paths"][path][method]["responses"])


def test_callback_url_and_the_delivery_state_are_documented(schema: dict[str, Any]) -> None:
    [param] = [p for p in schema["paths"]["/api/v1/jobs"]["post"]["parameters"]
               if p["name"] == "callback_url"]
    assert param["in"] == "query" and "X-Imgrec-Signature" in param["description"]
    job = schema["components"]["schemas"]["Job"]["properties"]
    assert "callback" in job
    delivery = schema["components"]["schemas"]["CallbackDelivery"]["properties"]
    assert {"state", "attempts", "last_status", "last_error", "next_attempt_at",
            "delivered_at"} <= set(delivery)
    events = schema["paths"]["/api/v1/jobs/{job_id}/events"]["get"]["responses"]["200"]
    assert "text/event-stream" in events["content"]
    letter = schema["components"]["schemas"]["DeadLetterBody"]["properties"]
    assert {"reason", "receive_count", "died_at", "input_present"} <= set(letter)
