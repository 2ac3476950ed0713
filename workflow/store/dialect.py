"""``INSERT .. ON CONFLICT`` for the connection's database, SQLite or PostgreSQL.

SQLAlchemy's core ``insert`` has no ``ON CONFLICT``; each dialect's has. The dialect's
module is imported on first use: a command on SQLite never loads the PostgreSQL dialect
(its drivers' modules, its types: about 30 ms of every start), and on PostgreSQL the
engine has loaded it already.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
    from sqlalchemy.sql.schema import Table


def insert(conn: Connection, table: Table) -> PostgresInsert | SqliteInsert:
    """The dialect's insert into ``table``: PostgreSQL's on PostgreSQL, else SQLite's."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)


_BUILT: dict[tuple[str, str], Any] = {}


def built(conn: Connection, name: str, build: Callable[[Connection], Any]) -> Any:
    """The statement ``name`` for the connection's dialect, built on first use and kept:
    a statement built once is compiled and cache-keyed once, where one built per call
    costs SQLAlchemy most of its execution (a handler runs a few for every event)."""
    key = (conn.dialect.name, name)
    found = _BUILT.get(key)
    if found is None:
        found = _BUILT[key] = build(conn)
    return found
