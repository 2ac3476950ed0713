"""PostgreSQL connections give up a dead peer in seconds, on both ends."""

from __future__ import annotations

import urllib.parse

import pytest
import sqlalchemy as sa

from workflow.store import connect
from workflow.store.connection import DEAD_PEER_SECONDS

pytestmark = pytest.mark.postgres

SERVER_SIDE = ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count",
               "tcp_user_timeout")  # fmt: skip


def _show(engine: sa.Engine, *names: str) -> list[str]:
    with engine.connect() as conn:
        return [str(conn.execute(sa.text(f"SHOW {name}")).scalar_one()) for name in names]


def test_the_server_ends_a_dead_workers_session_within_the_bound(postgres_server: str) -> None:
    engine = connect(postgres_server)
    try:
        idle, interval, count, user_timeout = map(int, _show(engine, *SERVER_SIDE))
        assert idle + interval * count <= DEAD_PEER_SECONDS
        assert user_timeout == DEAD_PEER_SECONDS * 1000
        assert _show(engine, "default_transaction_read_only") == ["off"]
    finally:
        engine.dispose()


def test_the_url_says_the_last_word_and_read_only_stays(postgres_server: str) -> None:
    options = urllib.parse.quote("-c tcp_keepalives_idle=61")
    engine = connect(f"{postgres_server}?keepalives_idle=60&options={options}", read_only=True)
    try:
        assert _show(engine, "tcp_keepalives_idle", "default_transaction_read_only") == ["61", "on"]
        with engine.connect() as conn:
            assert conn.connection.dbapi_connection.info.get_parameters()["keepalives_idle"] == "60"  # type: ignore[union-attr]
    finally:
        engine.dispose()
