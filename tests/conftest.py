"""For the whole session: no embedded Redis left running by the tests' own process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from workflow.ops.embedded import EmbeddedRedis
from workflow.settings import Settings


@pytest.fixture(scope="session", autouse=True)
def _embedded_redis_stopped_at_the_end() -> Iterator[None]:
    """Code under test that reaches the Celery app in this process (its configuration
    resolves the broker) starts the embedded Redis under the default var dir when no
    broker is set. It is a daemon: stop it at the end, unless it was running before."""
    embedded = EmbeddedRedis(Settings().var_dir / "redis")
    running_before = embedded.ping()
    yield
    if not running_before:
        embedded.stop()
