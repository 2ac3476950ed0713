"""A worker's holds on its work, on SQLite and PostgreSQL, with a real SMTP server: a
dispatch that died is redone with what it had recorded, a message that comes back after
the work is a no-op, and a slow send keeps its claim while the worker lives.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from scripts.seed_history import TZ, A, at
from tests.integration.servers import SmtpCatcher
from workflow import handlers
from workflow.engine import Engine
from workflow.mail.delivery import deliver
from workflow.settings import Settings
from workflow.store import effects, tables
from workflow.store.effects import EffectState


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, smtp: SmtpCatcher) -> Settings:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("COUNCIL_"):
            monkeypatch.delenv(name, raising=False)
    return Settings(var_dir=tmp_path / "var", broker_url="redis://127.0.0.1:1/0",
                    mail_from="council@kommun.example", smtp_host="127.0.0.1",
                    smtp_port=smtp.port, smtp_security="none", smtp_timeout=20,
                    reply_secret=None, claim_lease=2)  # fmt: skip


def activation(engine: Engine) -> int:
    """The event that prompts the owner of point 1's first step."""
    engine.start(A, actor="sara.nilsson", now=at("2022-12-01T09:00"), only=1)
    with engine.db.connect() as conn:
        return int(
            conn.execute(
                sa.select(tables.events.c.id).where(tables.events.c.type == "step.activated")
            ).scalar_one()
        )


def effect_rows(db: sa.Engine) -> list[Any]:
    with db.connect() as conn:
        return list(conn.execute(sa.select(tables.effects).order_by(tables.effects.c.id)))


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def test_a_dispatch_that_died_is_redone_with_what_it_had_recorded(
    engine: Engine, settings: Settings, smtp: SmtpCatcher
) -> None:
    """A dispatch ran its handlers (the prompt recorded) and died before delivering and
    before marking the event handled: the redo skips the handlers and delivers the prompt
    it finds recorded; a copy of the message after that is a no-op."""
    event_id = activation(engine)
    first = handlers.dispatch(engine.db, engine.definitions, settings, event_id, now=now(), tz=TZ)
    assert len(first.recorded) == 1
    with engine.db.begin() as conn:  # the worker died here: nothing delivered, not handled
        conn.execute(tables.outbox.update().values(handled_at=None))
    again = handlers.dispatch(engine.db, engine.definitions, settings, event_id, now=now(), tz=TZ)
    assert again.skipped == ["prompt-owner", "mail-report"]
    assert again.recorded == first.recorded
    report = deliver(engine.db, settings, again.recorded, now=now())
    assert report.done == first.recorded
    assert len(smtp.received) == 1
    late = handlers.dispatch(engine.db, engine.definitions, settings, event_id, now=now(), tz=TZ)
    assert late.redundant
    assert late.recorded == []
    assert [r.state for r in effect_rows(engine.db)] == [EffectState.DONE.value]


def test_a_slow_send_keeps_its_claim_while_the_worker_lives(
    engine: Engine, settings: Settings, smtp: SmtpCatcher
) -> None:
    """The server takes three leases to accept the prompt: the claim is renewed meanwhile,
    so another delivery cannot take the effect, and the prompt is sent once."""
    smtp.handler.delay = 3 * settings.claim_lease
    event_id = activation(engine)
    done = handlers.dispatch(engine.db, engine.definitions, settings, event_id, now=now(), tz=TZ)
    (effect_id,) = done.recorded
    sending = threading.Thread(target=deliver, args=(engine.db, settings, [effect_id]),
                               kwargs={"now": now()})  # fmt: skip
    sending.start()
    seen: list[dt.datetime] = []
    try:
        while sending.is_alive():
            (row,) = effect_rows(engine.db)
            if row.state == EffectState.SENDING.value:
                seen.append(row.claimed_until)
                with engine.db.begin() as conn:  # another worker tries to take it
                    assert effects.claim(conn, effect_id, now=now()) is None
            sending.join(timeout=0.2)
    finally:
        sending.join()
    assert len(set(seen)) >= 2  # renewed while it was being sent
    assert [r.state for r in effect_rows(engine.db)] == [EffectState.DONE.value]
    assert len(smtp.received) == 1


def test_a_batch_claims_its_mail_with_its_handlers_and_a_dead_one_is_redone(
    engine: Engine, settings: Settings, smtp: SmtpCatcher
) -> None:
    """A worker's dispatch claims the prompts it recorded in the handlers' transaction
    (one commit fewer before the first send); delivery sends them without claiming again.
    If the worker dies between that commit and the send, the claim runs out and the
    reconciler's query finds the prompt: it is sent once, by whoever redoes it."""
    event_id = activation(engine)
    batch = handlers.dispatch_batch(engine.db, engine.definitions, settings, [event_id],
                                    now=now(), tz=TZ, claim=True)  # fmt: skip
    (row,) = effect_rows(engine.db)
    assert [r.id for r in batch.claimed] == batch.recorded == [row.id]
    assert (row.state, row.attempts) == (EffectState.SENDING.value, 1)
    with engine.db.begin() as conn:  # another delivery cannot take it meanwhile
        assert effects.claim(conn, row.id, now=now()) is None
    # The worker died here. Once the lease has run out, the reconciler's query has it.
    later = now() + dt.timedelta(seconds=settings.claim_lease + 1)
    with engine.db.connect() as conn:
        assert effects.due(conn, now=later, stale_before=later, limit=10) == [row.id]
    report = deliver(engine.db, settings, [row.id], now=later)
    assert report.done == [row.id]
    assert len(smtp.received) == 1
    (after,) = effect_rows(engine.db)
    assert (after.state, after.attempts) == (EffectState.DONE.value, 2)

    # A live worker delivers what it claimed itself: no second claim, one attempt.
    engine.start(A, actor="sara.nilsson", now=at("2022-12-01T09:00"), only=2)
    with engine.db.connect() as conn:
        (second,) = conn.execute(
            sa.select(tables.events.c.id).where(tables.events.c.type == "step.activated",
                                                tables.events.c.id != event_id)
        ).scalars()  # fmt: skip
    batch = handlers.dispatch_batch(engine.db, engine.definitions, settings, [second],
                                    now=now(), tz=TZ, claim=True)  # fmt: skip
    report = deliver(engine.db, settings, batch.recorded, now=now(), claimed=batch.claimed)
    assert report.done == batch.recorded
    assert [r.attempts for r in effect_rows(engine.db)] == [2, 1]
    assert len(smtp.received) == 2


def test_one_event_whose_handler_raises_holds_back_only_itself(
    engine: Engine, settings: Settings, smtp: SmtpCatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch whose transaction fails is redone a transaction per event: the event whose
    handler raised stays unhandled (held, for the retry or the reconciler), the others are
    handled and their prompts recorded; once the fault is gone it is handled too."""
    engine.start(A, actor="sara.nilsson", now=at("2022-12-01T09:00"), only=1)
    engine.start(A, actor="sara.nilsson", now=at("2022-12-01T09:00"), only=2)
    with engine.db.connect() as conn:
        every = list(conn.execute(sa.select(tables.events.c.id).order_by(tables.events.c.id))
                     .scalars())  # fmt: skip
        bad, good = conn.execute(
            sa.select(tables.events.c.id).where(tables.events.c.type == "step.activated")
            .order_by(tables.events.c.id)
        ).scalars()  # fmt: skip
    real = handlers.prompt_owner

    def broken(ctx: handlers.HandlerContext, event: Any) -> list[int]:
        if ctx.event_id == bad:
            raise RuntimeError("a definition this worker cannot read")
        return real(ctx, event)

    original = handlers.HANDLERS
    patched = {
        kind: tuple(handlers.Handler(h.name, broken) if h.name == "prompt-owner" else h
                    for h in chain)
        for kind, chain in original.items()
    }  # fmt: skip
    monkeypatch.setattr(handlers, "HANDLERS", patched)
    batch = handlers.dispatch_batch(engine.db, engine.definitions, settings, every,
                                    now=now(), tz=TZ)  # fmt: skip
    assert list(batch.failed) == [bad]
    assert isinstance(batch.failed[bad], RuntimeError)
    assert sorted(batch.handled) == sorted(e for e in every if e != bad)
    assert list(batch.recorded_by) == [good]
    with engine.db.connect() as conn:
        rows = {r.event_id: r for r in conn.execute(sa.select(tables.outbox))}
        processed = set(conn.execute(sa.select(tables.processed.c.event_id)).scalars())
    assert rows[bad].handled_at is None
    assert rows[bad].dispatch_until is not None  # held: its hold runs out if nobody retries
    assert all(rows[e].handled_at is not None for e in every if e != bad)
    assert bad not in processed  # its transaction left nothing: the retry runs it whole

    monkeypatch.setattr(handlers, "HANDLERS", original)  # the fault is gone
    again = handlers.dispatch_batch(engine.db, engine.definitions, settings, every,
                                    now=now(), tz=TZ)  # fmt: skip
    assert again.failed == {}
    assert sorted(again.redundant) == sorted(e for e in every if e != bad)
    assert list(again.recorded_by) == [bad]


def test_a_batch_folds_a_points_log_once_for_all_its_prompts(
    engine: Engine, settings: Settings, smtp: SmtpCatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Completing a step that opens two at once gives a point two prompts in one batch:
    the point's log is replayed by one Replayer for both (and for the checks before
    them), not once or twice per prompt; each prompt is recorded as before."""
    from workflow.core.actions import CompleteStep
    from workflow.core.state import Replayer

    engine.start(A, actor="sara.nilsson", now=at("2022-12-01T09:00"), only=4)
    plan = engine.definitions.assignment(A).point(4)
    engine.act(plan, CompleteStep(actor="amir.hassan", step="map"), now=at("2022-12-02T09:00"))
    with engine.db.connect() as conn:
        every = list(conn.execute(sa.select(tables.events.c.id).order_by(tables.events.c.id))
                     .scalars())  # fmt: skip
    made: list[tuple[str, int]] = []

    class Counted(Replayer):
        def __init__(self, point: Any, log: Any) -> None:
            made.append((A, point.number))
            super().__init__(point, log)

    monkeypatch.setattr(handlers, "Replayer", Counted)
    batch = handlers.dispatch_batch(engine.db, engine.definitions, settings, every,
                                    now=now(), tz=TZ)  # fmt: skip
    assert batch.failed == {}
    assert len(batch.recorded) == 2  # the two opened by map (map's own: done since)
    assert made == [(A, 4)]
