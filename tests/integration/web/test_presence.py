"""Reply queues of dead web tiers are removed after the grace period, on both backends."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers import aws_adapters

from imgrec import keys
from imgrec.embedded.dir_store import DirectoryStore
from imgrec.embedded.sqlite_queue import SqliteBroker
from imgrec.errors import QueueNotFound
from imgrec.ports import ObjectStore, QueueBroker
from imgrec.web.presence import WebPresence


@pytest.fixture(params=["embedded", pytest.param("aws", marks=pytest.mark.aws)])
def backend(request: pytest.FixtureRequest, tmp_path: Path
            ) -> Iterator[tuple[ObjectStore, QueueBroker]]:
    if request.param == "embedded":
        yield DirectoryStore(tmp_path / "objects"), SqliteBroker(tmp_path / "q.db")
        return
    from imgrec.aws.s3_store import S3Store
    from imgrec.aws.sqs_queue import SqsBroker

    moto = aws_adapters.moto_endpoint(request)
    bucket = f"presence-{uuid.uuid4().hex[:8]}"
    moto.client("s3").create_bucket(Bucket=bucket)
    prefix = f"p{uuid.uuid4().hex[:6]}"
    yield (S3Store(moto.client("s3"), bucket),
           SqsBroker(moto.client("sqs"), lambda name: f"{prefix}-{name}"))
    aws_adapters.reset_moto(moto)


def test_a_silent_web_tiers_queue_goes_after_the_grace_period(
    backend: tuple[ObjectStore, QueueBroker]
) -> None:
    store, broker = backend
    now = [1000.0]
    tiers = {}
    for name in ("replies-dead", "replies-live"):
        tiers[name] = WebPresence(store, broker, name, interval_s=5, grace_s=60,
                                  clock=lambda: now[0])
        tiers[name].beat()
        broker.open(name).send(["a reply nobody will read"])
    live = tiers["replies-live"]

    now[0] += 59  # the dead one stopped beating; the live one beats on
    live.beat()
    assert live.sweep() == []
    now[0] += 2
    live.beat()
    assert live.sweep() == ["replies-dead"]
    with pytest.raises(QueueNotFound):
        broker.open("replies-dead", create=False).depth()
    assert broker.open("replies-live", create=False).depth().total == 1
    assert list(store.list(keys.WEB_TIERS_PREFIX)) == [keys.web_tier_key("replies-live")]
    live.stop()
    assert list(store.list(keys.WEB_TIERS_PREFIX)) == []
