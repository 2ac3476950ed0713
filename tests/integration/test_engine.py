"""The engine against real databases: transactions, locking, idempotent start, order."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
import sqlalchemy as sa

from tests.integration.conftest import STOCKHOLM
from workflow import store
from workflow.core.actions import AddNote, BeginStep, CompleteStep
from workflow.engine import Engine
from workflow.errors import ConflictError, PersonalDataRefused, TransitionNotAllowed
from workflow.store import tables

A = "kf-2022-hedersvald"
T0 = dt.datetime(2022, 12, 1, 9, 0, tzinfo=STOCKHOLM)


def _count(db: sa.Engine, table: sa.Table) -> int:
    with db.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_start_is_idempotent(engine: Engine) -> None:
    """Starting an assignment twice starts each point once and then changes nothing."""
    first = engine.start(A, actor="sara.nilsson", now=T0)
    events_after_first = _count(engine.db, tables.events)
    second = engine.start(A, actor="sara.nilsson", now=T0 + dt.timedelta(hours=1))
    assert first.started == [1, 2]  # 3 to 7 are planned to start later
    assert sorted(first.scheduled) == [3, 4, 5, 6, 7]
    assert second.started == []
    assert second.already == [1, 2]
    assert _count(engine.db, tables.events) == events_after_first


def test_state_events_and_outbox_commit_together(engine: Engine) -> None:
    """Every event of a command gets exactly one outbox row in the same commit."""
    engine.start(A, actor="sara.nilsson", now=T0)
    plan = engine.definitions.assignment(A).point(1)
    outcome = engine.act(
        plan, CompleteStep(actor="anders.berg", step="analyse"), now=T0 + dt.timedelta(days=3)
    )
    with engine.db.connect() as conn:
        rows = conn.execute(sa.select(tables.outbox.c.event_id).order_by(tables.outbox.c.id)).all()
        version = store.point_version(conn, A, 1)
    assert [r.event_id for r in rows][-len(outcome.event_ids) :] == list(outcome.event_ids)
    assert _count(engine.db, tables.outbox) == _count(engine.db, tables.events)
    assert version == 2


def test_crash_mid_command_writes_nothing(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure after the events are inserted rolls back events, outbox and state alike."""
    engine.start(A, actor="sara.nilsson", now=T0)
    before = (_count(engine.db, tables.events), _count(engine.db, tables.outbox))

    def crash(*args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("power cut")

    monkeypatch.setattr(store, "save_point", crash)
    plan = engine.definitions.assignment(A).point(1)
    with pytest.raises(RuntimeError, match="power cut"):
        engine.act(plan, CompleteStep(actor="anders.berg", step="analyse"), now=T0)
    monkeypatch.undo()
    assert (_count(engine.db, tables.events), _count(engine.db, tables.outbox)) == before
    state, _ = engine.point_state(plan)
    assert state.step("analyse").status.value == "active"


def test_refused_command_writes_nothing(engine: Engine) -> None:
    """A transition the state forbids, or a note with a personal number, leaves no trace."""
    engine.start(A, actor="sara.nilsson", now=T0)
    before = _count(engine.db, tables.events)
    plan = engine.definitions.assignment(A).point(1)
    with pytest.raises(TransitionNotAllowed):
        engine.act(plan, BeginStep(actor="anders.berg", step="draft"), now=T0)
    with pytest.raises(PersonalDataRefused):
        engine.act(plan, AddNote(actor="anders.berg", text="gäller 19121212-1212"), now=T0)
    assert _count(engine.db, tables.events) == before


def test_racing_commands_give_one_success_and_one_conflict(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two commands that read the same version of a point: one commits, one conflicts."""
    engine.start(A, actor="sara.nilsson", now=T0)
    plan = engine.definitions.assignment(A).point(1)
    both_loaded = threading.Barrier(2, timeout=20)
    real_head = store.point_head

    def head_then_wait(conn: sa.Connection, assignment: str, number: int) -> store.Head | None:
        head = real_head(conn, assignment, number)
        if threading.current_thread().name.startswith("racer"):
            both_loaded.wait()  # both have read version N (and its snapshot) before either writes
        return head

    monkeypatch.setattr(store, "point_head", head_then_wait)
    results: dict[str, object] = {}

    def racer(name: str, text: str) -> None:
        try:
            engine.act(plan, AddNote(actor="anders.berg", text=text), now=T0)
            results[name] = "ok"
        except ConflictError as exc:
            results[name] = exc

    threads = [
        threading.Thread(target=racer, args=(f"racer-{i}", f"note {i}"), name=f"racer-{i}")
        for i in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    outcomes = sorted(type(v).__name__ if v != "ok" else "ok" for v in results.values())
    assert outcomes == ["ConflictError", "ok"]
    state, _ = engine.point_state(plan)
    assert len(state.notes) == 1  # the loser's note was not written, nothing lost silently


def test_event_log_is_ordered(engine: Engine) -> None:
    """Event ids increase in the order commands happened, and --since pages through them."""
    engine.start(A, actor="sara.nilsson", now=T0)
    plan = engine.definitions.assignment(A).point(1)
    for day, step in enumerate(["analyse", "draft"], start=1):
        engine.act(
            plan, CompleteStep(actor="anders.berg", step=step), now=T0 + dt.timedelta(days=day)
        )
    listed = engine.events(assignment=A, point=1)
    ids = [i for i, _ in listed]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    times = [e.occurred_at for _, e in listed]
    assert times == sorted(times)
    types = [e.type.value for _, e in listed]
    assert types == [
        "point.started",
        "step.activated",
        "step.completed",
        "step.activated",
        "step.completed",
        "step.activated",
    ]
    assert [i for i, _ in engine.events(since=ids[2])][:1] == [ids[3]]
