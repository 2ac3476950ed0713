"""Delivering recorded prompts through real transports: an aiosmtpd server and a maildir.

Runs on SQLite and PostgreSQL. Covers what happens to an effect on success,
on a repeat, with the server down (transient, retried with backoff), with a
refused recipient (permanent), after the last retry, and that the SMTP
password never reaches an error message.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import gc
import os
import smtplib
import socket
import threading
import traceback
import warnings
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult

from tests.integration.servers import SmtpCatcher, _Handler
from workflow import store
from workflow.core.events import EffectFailed, Event, EventType
from workflow.core.specs import Language
from workflow.errors import DeliveryError
from workflow.eventlog import EventLog
from workflow.mail import transport as transport_module
from workflow.mail.compose import Prompt, compose, message_id
from workflow.mail.delivery import deliver
from workflow.mail.transport import MaildirTransport, SmtpTransport, transport_for
from workflow.mail.wire import Wire
from workflow.settings import Settings
from workflow.store import effects, tables
from workflow.store.effects import EffectState

T0 = dt.datetime(2024, 2, 1, 9, 0, tzinfo=dt.UTC)
DOMAIN = "kommun.example"
AMIR = "amir.hassan@kommun.example"
MARIA = "maria.lind@kommun.example"
#: A made-up credential that must never leak.
PASSWORD = "hunter2-Sekret-9f3a"


class MakeSettings(Protocol):
    def __call__(self, **values: Any) -> Settings: ...


@pytest.fixture
def make_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> MakeSettings:
    """Settings from explicit arguments only: no council.toml, no COUNCIL_* variables."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("COUNCIL_"):
            monkeypatch.delenv(name, raising=False)

    def make(**values: Any) -> Settings:
        defaults: dict[str, Any] = {
            "var_dir": tmp_path / "var",
            "broker_url": "redis://127.0.0.1:1/0",
            "mail_from": "council@kommun.example",
            "smtp_security": "none",
            "smtp_timeout": 5,
            "max_retries": 2,
            "retry_backoff": 1.0,
        }
        return Settings(**{**defaults, **values})

    return make


@pytest.fixture
def smtp_settings(make_settings: MakeSettings, smtp: SmtpCatcher) -> Settings:
    """Settings that send through this test's SMTP catcher."""
    return make_settings(smtp_host="127.0.0.1", smtp_port=smtp.port)


def closed_port() -> int:
    """A loopback port nothing listens on (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_prompt(to_email: str = AMIR) -> Prompt:
    return Prompt(
        language=Language.SV,
        to_name="Amir Hassan",
        to_email=to_email,
        assignment="kf-2022-hedersvald",
        assignment_title="Hedersrelaterat våld",
        reference="KS 2022/123",
        point="kf-2022-hedersvald/4",
        point_title="Rapporteringsvägar",
        step="map",
        step_title="Kartlägg rapporteringsvägar",
        due=dt.date(2023, 3, 6),
        coordinator_name="Sara Nilsson",
        coordinator_email="sara.nilsson@kommun.example",
    )


def record_prompt(db: sa.Engine, to_email: str = AMIR) -> tuple[int, int, str]:
    """A step.activated event and the prompt effect a handler records for it."""
    event = Event(
        type=EventType.STEP_ACTIVATED,
        assignment="kf-2022-hedersvald",
        point=4,
        step="map",
        actor="sara.nilsson",
        occurred_at=T0,
        data={"owner": to_email.split("@")[0]},
    )
    with db.begin() as conn:
        (event_id,) = store.append_events(conn, [event], now=T0)
        key = f"prompt:{event_id}:{to_email}"
        payload = {
            "prompt": make_prompt(to_email).model_dump(mode="json"),
            "created": T0.isoformat(),
        }
        effect_id = effects.record(
            conn, key=key, kind="prompt", event_id=event_id, payload=payload, now=T0
        )
    assert effect_id is not None
    return event_id, effect_id, key


def effect(db: sa.Engine, effect_id: int) -> Any:
    with db.connect() as conn:
        return conn.execute(sa.select(tables.effects).where(tables.effects.c.id == effect_id)).one()


def next_attempt(db: sa.Engine, effect_id: int) -> dt.datetime:
    """When a waiting effect is due again."""
    when = store.aware(effect(db, effect_id).next_attempt_at)
    assert when is not None
    return when


def failure_events(db: sa.Engine) -> list[Event]:
    with db.connect() as conn:
        return [e for _, e in store.list_events(conn) if e.type is EventType.EFFECT_FAILED]


# --- deliver() over SMTP -----------------------------------------------------------


def test_deliver_sends_the_prompt_and_marks_it_done(
    db: sa.Engine, smtp: SmtpCatcher, smtp_settings: Settings
) -> None:
    """A recorded prompt is sent once, with the Message-ID of its key, and marked done."""
    _, effect_id, key = record_prompt(db)
    report = deliver(db, smtp_settings, [effect_id], now=T0)
    assert report.done == [effect_id]
    assert (report.retrying, report.failed, report.skipped) == ([], [], [])
    assert len(smtp.received) == 1
    received = smtp.received[0]
    assert received.envelope_to == [AMIR]
    assert received.message_id == message_id(key, DOMAIN)
    assert (
        received.message["Subject"] == "Uppgift: Kartlägg rapporteringsvägar (kf-2022-hedersvald/4)"
    )
    row = effect(db, effect_id)
    assert row.state == EffectState.DONE.value
    assert row.attempts == 1
    assert store.aware(row.done_at) == T0
    assert row.claimed_until is None


def test_delivering_the_same_effect_again_sends_nothing(
    db: sa.Engine, smtp: SmtpCatcher, smtp_settings: Settings
) -> None:
    """A second deliver of a done effect skips it (a redelivered task sends no second mail)."""
    _, first, _ = record_prompt(db)
    assert deliver(db, smtp_settings, [first], now=T0).done == [first]
    _, second, _ = record_prompt(db, MARIA)
    report = deliver(db, smtp_settings, [first, second], now=T0 + dt.timedelta(hours=1))
    assert report.skipped == [first]
    assert report.done == [second]
    assert [r.envelope_to for r in smtp.received] == [[AMIR], [MARIA]]
    again = deliver(db, smtp_settings, [first, second], now=T0 + dt.timedelta(days=1))
    assert again.skipped == [first, second]
    assert len(smtp.received) == 2


def test_smtp_down_is_transient_and_retried_with_backoff(
    db: sa.Engine, smtp: SmtpCatcher, smtp_settings: Settings
) -> None:
    """Server down: the effect goes back to pending with a next attempt; later it goes out."""
    _, effect_id, key = record_prompt(db)
    smtp.stop()
    report = deliver(db, smtp_settings, [effect_id], now=T0)
    assert report.retrying == [effect_id]
    assert report.done == report.failed == []
    waiting = effect(db, effect_id)
    assert waiting.state == EffectState.PENDING.value
    assert waiting.attempts == 1
    assert waiting.claimed_until is None
    assert f"127.0.0.1:{smtp.port}" in waiting.detail
    due_at = store.aware(waiting.next_attempt_at)
    assert due_at is not None
    assert T0 + dt.timedelta(seconds=0.5) <= due_at <= T0 + dt.timedelta(seconds=1)
    assert failure_events(db) == []

    smtp.start()
    # not due yet: nothing is sent before the backoff has passed
    early = deliver(db, smtp_settings, [effect_id], now=due_at - dt.timedelta(seconds=0.1))
    assert early.skipped == [effect_id]
    assert smtp.received == []

    report = deliver(db, smtp_settings, [effect_id], now=due_at + dt.timedelta(seconds=0.1))
    assert report.done == [effect_id]
    assert smtp.message_ids() == [message_id(key, DOMAIN)]
    done = effect(db, effect_id)
    assert done.state == EffectState.DONE.value
    assert done.attempts == 2
    assert done.detail is None


def test_attempts_beyond_max_retries_fail(
    db: sa.Engine, smtp: SmtpCatcher, smtp_settings: Settings
) -> None:
    """After max_retries transient failures the next one fails the effect, with an event."""
    assert smtp_settings.max_retries == 2
    event_id, effect_id, key = record_prompt(db)
    smtp.stop()
    now = T0
    outcomes = []
    for _ in range(3):
        report = deliver(db, smtp_settings, [effect_id], now=now)
        outcomes.append((report.retrying, report.failed))
        if effect(db, effect_id).next_attempt_at is not None:
            now = max(now, next_attempt(db, effect_id)) + dt.timedelta(seconds=0.01)
    assert outcomes == [([effect_id], []), ([effect_id], []), ([], [effect_id])]
    failed = effect(db, effect_id)
    assert failed.state == EffectState.FAILED.value
    assert failed.attempts == 3
    (event,) = failure_events(db)
    assert (event.assignment, event.point, event.step) == ("kf-2022-hedersvald", 4, "map")
    assert event.data["effect"] == effect_id
    assert event.data["key"] == key
    # a failed effect is not picked up again, not even once the server is back
    smtp.start()
    later = deliver(db, smtp_settings, [effect_id], now=now + dt.timedelta(hours=1))
    assert later.skipped == [effect_id]
    assert smtp.received == []
    assert event_id != 0


def test_no_retries_configured_fails_at_the_first_transient_error(
    db: sa.Engine, smtp: SmtpCatcher, make_settings: MakeSettings
) -> None:
    """With max_retries=0 one transient failure is final."""
    settings = make_settings(smtp_host="127.0.0.1", smtp_port=smtp.port, max_retries=0)
    _, effect_id, _ = record_prompt(db)
    smtp.stop()
    assert deliver(db, settings, [effect_id], now=T0).failed == [effect_id]
    assert effect(db, effect_id).state == EffectState.FAILED.value
    assert len(failure_events(db)) == 1


def test_a_delivery_that_gives_up_records_effect_failed_through_the_event_log(
    db: sa.Engine, smtp: SmtpCatcher, make_settings: MakeSettings
) -> None:
    """The effect.failed event is written with its outbox row for the source's point, and
    handed to the event log's publisher once committed."""
    settings = make_settings(smtp_host="127.0.0.1", smtp_port=smtp.port, max_retries=0)
    event_id, effect_id, key = record_prompt(db)
    smtp.stop()
    published: list[int] = []
    later = T0 + dt.timedelta(minutes=1)
    report = deliver(db, settings, [effect_id], now=later, events=EventLog(db, published.extend))
    assert report.failed == [effect_id]
    with db.connect() as conn:
        logged = store.list_events(conn, since=event_id)
        outbox_rows = conn.execute(sa.select(tables.outbox.c.event_id)).scalars().all()
    ((new_id, event),) = logged
    assert published == [new_id]
    assert new_id in outbox_rows
    assert event.type is EventType.EFFECT_FAILED
    assert (event.assignment, event.point, event.step) == ("kf-2022-hedersvald", 4, "map")
    assert (event.actor, event.occurred_at) == ("council", later)
    assert event.payload == EffectFailed(
        effect=effect_id, key=key, kind="prompt", error=effect(db, effect_id).detail[:200]
    )


def test_refused_recipient_fails_at_once_and_the_rest_of_the_batch_goes_out(
    db: sa.Engine, smtp: SmtpCatcher, smtp_settings: Settings
) -> None:
    """A 5xx for a recipient is permanent: failed after one attempt; other mail still sent."""
    smtp.handler.refuse.add(AMIR)
    _, refused, refused_key = record_prompt(db, AMIR)
    _, accepted, _ = record_prompt(db, MARIA)
    report = deliver(db, smtp_settings, [refused, accepted], now=T0)
    assert report.failed == [refused]
    assert report.done == [accepted]
    assert report.retrying == []
    assert [r.envelope_to for r in smtp.received] == [[MARIA]]
    row = effect(db, refused)
    assert row.state == EffectState.FAILED.value
    assert row.attempts == 1
    assert row.next_attempt_at is None
    assert "recipient refused" in row.detail
    assert "550" in row.detail
    (event,) = failure_events(db)
    assert event.data["key"] == refused_key
    assert "recipient refused" in event.data["error"]


class _BusyHandler(_Handler):
    """Answers 450 (mailbox busy, try later) for the addresses in ``refuse``."""

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refuse:
            return "450 4.2.1 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"


@pytest.fixture
def busy_smtp() -> Iterator[SmtpCatcher]:
    """An SMTP catcher that defers (4xx) the recipients in ``handler.refuse``."""
    catcher = SmtpCatcher()
    catcher.handler = _BusyHandler()
    catcher.start()
    yield catcher
    catcher.stop()


def test_temporarily_refused_recipient_is_retried(
    db: sa.Engine, busy_smtp: SmtpCatcher, make_settings: MakeSettings
) -> None:
    """A 4xx for a recipient is transient: the effect waits for a retry instead of failing."""
    settings = make_settings(smtp_host="127.0.0.1", smtp_port=busy_smtp.port)
    busy_smtp.handler.refuse.add(AMIR)
    _, effect_id, _ = record_prompt(db)
    report = deliver(db, settings, [effect_id], now=T0)
    assert report.retrying == [effect_id]
    row = effect(db, effect_id)
    assert row.state == EffectState.PENDING.value
    assert "450" in row.detail
    busy_smtp.handler.refuse.clear()
    later = next_attempt(db, effect_id) + dt.timedelta(seconds=0.01)
    assert deliver(db, settings, [effect_id], now=later).done == [effect_id]
    assert len(busy_smtp.received) == 1


# --- maildir -----------------------------------------------------------------------


def _maildir_messages(path: Path) -> list[EmailMessage]:
    found = []
    for file in sorted((path / "new").iterdir()):
        parsed = email.message_from_bytes(file.read_bytes(), policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        found.append(parsed)
    return found


def test_maildir_transport_writes_parseable_messages(tmp_path: Path) -> None:
    """Each message becomes a file in new/ that parses back with the same Message-ID."""
    box = tmp_path / "mail"
    sent = [
        compose(
            make_prompt(to),
            key=f"prompt:{i}:{to}",
            sender="council@kommun.example",
            domain=DOMAIN,
            created=T0,
        )
        for i, to in enumerate((AMIR, MARIA))
    ]
    with MaildirTransport(box) as transport:
        for message in sent:
            transport.send(message)
    assert sorted(p.name for p in box.iterdir()) == ["cur", "new", "tmp"]
    written = _maildir_messages(box)
    assert sorted(m["Message-ID"] for m in written) == sorted(m["Message-ID"] for m in sent)
    for message in written:
        assert message["Subject"].startswith("Uppgift: Kartlägg")
        assert [p.get_content_type() for p in message.walk()][-1] == "text/calendar"
    assert list((box / "tmp").iterdir()) == []


def test_deliver_without_smtp_host_writes_to_the_maildir(
    db: sa.Engine, make_settings: MakeSettings, tmp_path: Path
) -> None:
    """With no SMTP host configured, delivery goes to the maildir and marks the effect done."""
    settings = make_settings(maildir=tmp_path / "box")
    assert isinstance(transport_for(settings), MaildirTransport)
    _, effect_id, key = record_prompt(db)
    assert deliver(db, settings, [effect_id], now=T0).done == [effect_id]
    (written,) = _maildir_messages(tmp_path / "box")
    assert written["Message-ID"] == message_id(key, DOMAIN)
    assert effect(db, effect_id).state == EffectState.DONE.value


def test_default_maildir_is_under_var_dir(make_settings: MakeSettings, tmp_path: Path) -> None:
    """transport_for picks var_dir/mail by default, and SMTP once a host is set."""
    transport = transport_for(make_settings())
    assert isinstance(transport, MaildirTransport)
    assert transport.path == tmp_path / "var" / "mail"
    assert isinstance(transport_for(make_settings(smtp_host="127.0.0.1")), SmtpTransport)


def test_unwritable_maildir_is_a_transient_error(tmp_path: Path) -> None:
    """A maildir that cannot be written raises a transient DeliveryError, not an OSError."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    message = compose(make_prompt(), key="k", sender="c@kommun.example", domain=DOMAIN, created=T0)
    with pytest.raises(DeliveryError) as caught, MaildirTransport(blocker) as transport:
        transport.send(message)
    assert caught.value.transient is True


# --- the password never leaks ------------------------------------------------------


def _all_text(exc: BaseException) -> str:
    """Everything an operator could see of an exception: message, repr, chained causes."""
    parts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    for linked in (exc.__cause__, exc.__context__):
        if linked is not None:
            parts += [str(linked), repr(linked), repr(getattr(linked, "args", ()))]
    return "\n".join(parts)


def test_password_is_not_in_the_error_when_the_server_is_unreachable(
    make_settings: MakeSettings,
) -> None:
    """Connecting to a closed port with credentials set: a transient error without the password."""
    settings = make_settings(
        smtp_host="127.0.0.1",
        smtp_port=closed_port(),
        smtp_username="council",
        smtp_password=PASSWORD,
    )
    with pytest.raises(DeliveryError) as caught, SmtpTransport(settings):
        pass
    assert caught.value.transient is True
    assert PASSWORD not in _all_text(caught.value)
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(settings.model_dump())


def _reject_everyone(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    return AuthResult(success=False, handled=False)


class AuthCatcher(SmtpCatcher):
    """An SMTP catcher that offers AUTH (without TLS, on loopback) and refuses every login."""

    def start(self) -> None:
        self._controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=_reject_everyone,
            auth_require_tls=False,
        )
        self._controller.start()


@pytest.fixture
def auth_smtp() -> Iterator[AuthCatcher]:
    catcher = AuthCatcher()
    catcher.start()
    yield catcher
    catcher.stop()


@contextlib.contextmanager
def no_leaked_connection(port: int) -> Iterator[None]:
    """Fail if a connection to ``port`` is left for the garbage collector to close.

    Warnings are recorded (not raised) inside, so a leak is reported here, by
    this test, instead of as an unraisable exception in whichever test runs next.
    """
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        yield
        gc.collect()
    leaks = [
        str(w.message)
        for w in seen
        if issubclass(w.category, ResourceWarning) and f"'127.0.0.1', {port})" in str(w.message)
    ]
    assert leaks == [], f"SMTP connection not closed: {leaks}"


def _open_and_fail(settings: Settings) -> DeliveryError:
    """Open an SmtpTransport expected to fail; return the error with no traceback attached."""
    try:
        with SmtpTransport(settings):
            pass
    except DeliveryError as exc:
        return exc
    raise AssertionError("the transport opened")


def test_refused_login_is_permanent_and_hides_the_password(
    db: sa.Engine, auth_smtp: AuthCatcher, make_settings: MakeSettings
) -> None:
    """A refused login fails the effect at once; neither error, effect nor event holds the password.

    The connection whose login was refused is closed, not left to the garbage collector.
    """
    settings = make_settings(
        smtp_host="127.0.0.1",
        smtp_port=auth_smtp.port,
        smtp_username="council",
        smtp_password=PASSWORD,
    )
    with no_leaked_connection(auth_smtp.port):
        error = _open_and_fail(settings)
        assert error.transient is False
        assert "login refused" in str(error)
        assert "535" in str(error)
        assert PASSWORD not in _all_text(error)
        del error

        _, effect_id, _ = record_prompt(db)
        assert deliver(db, settings, [effect_id], now=T0).failed == [effect_id]
        row = effect(db, effect_id)
        assert row.state == EffectState.FAILED.value
        assert "login refused" in row.detail
        assert PASSWORD not in row.detail
        (event,) = failure_events(db)
        assert PASSWORD not in str(event.data)
        assert auth_smtp.received == []


def test_starttls_refused_by_the_server_closes_the_connection(
    smtp: SmtpCatcher, make_settings: MakeSettings
) -> None:
    """STARTTLS against a server without it is a DeliveryError, and the connection is closed."""
    settings = make_settings(smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_security="starttls")
    with no_leaked_connection(smtp.port):
        error = _open_and_fail(settings)
        assert "STARTTLS" in str(error) or "SMTPNotSupportedError" in str(error)
        del error
    assert smtp.received == []


# --- the connection kept between batches ----------------------------------------------


def test_a_good_batch_leaves_its_connection_for_the_next(
    db: sa.Engine, smtp: SmtpCatcher, smtp_settings: Settings
) -> None:
    """A worker delivers one prompt per task: the second batch reuses the first's connection."""
    _, first, _ = record_prompt(db)
    _, second, _ = record_prompt(db, MARIA)
    assert deliver(db, smtp_settings, [first], now=T0).done == [first]
    assert deliver(db, smtp_settings, [second], now=T0).done == [second]
    peers = [r.peer for r in smtp.received]
    assert len(peers) == 2
    assert peers[0] == peers[1]


def test_a_kept_connection_the_server_dropped_is_replaced(
    db: sa.Engine, smtp: SmtpCatcher, smtp_settings: Settings
) -> None:
    """The server restarted between batches: NOOP fails, a new connection sends the mail."""
    _, first, _ = record_prompt(db)
    _, second, _ = record_prompt(db, MARIA)
    assert deliver(db, smtp_settings, [first], now=T0).done == [first]
    smtp.stop()
    smtp.start()
    report = deliver(db, smtp_settings, [second], now=T0)
    assert report.done == [second]
    assert (report.retrying, report.failed) == ([], [])
    assert [r.envelope_to for r in smtp.received] == [[AMIR], [MARIA]]
    assert smtp.received[0].peer != smtp.received[1].peer


def test_an_old_kept_connection_is_not_used(
    db: sa.Engine, smtp: SmtpCatcher, smtp_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kept longer than IDLE_SECONDS, a connection is closed and a new one opened."""
    clock = [1000.0]
    monkeypatch.setattr(transport_module.time, "monotonic", lambda: clock[0])
    _, first, _ = record_prompt(db)
    _, second, _ = record_prompt(db, MARIA)
    assert deliver(db, smtp_settings, [first], now=T0).done == [first]
    clock[0] += transport_module.IDLE_SECONDS + 1
    assert deliver(db, smtp_settings, [second], now=T0).done == [second]
    assert smtp.received[0].peer != smtp.received[1].peer


def test_a_failed_batch_keeps_no_connection(
    db: sa.Engine, smtp: SmtpCatcher, smtp_settings: Settings
) -> None:
    """A batch that ends in an error closes its connection: the next starts afresh."""
    session = SmtpTransport(smtp_settings)
    with pytest.raises(RuntimeError), session:
        raise RuntimeError("a batch that broke")
    assert transport_module._idle == {}
    _, effect_id, _ = record_prompt(db)
    assert deliver(db, smtp_settings, [effect_id], now=T0).done == [effect_id]
    assert len(transport_module._idle) == 1


class _HeloOnlySMTP(SMTP):
    """An SMTP server of the old kind: no ESMTP, so EHLO is not understood."""

    async def smtp_EHLO(self, hostname: str) -> None:
        await self.push("502 5.5.2 Error: command not recognized")


class HeloOnlyCatcher(SmtpCatcher):
    def start(self) -> None:
        handler = self.handler

        class _Controller(Controller):
            def factory(self) -> SMTP:
                return _HeloOnlySMTP(handler)

        self._controller = _Controller(handler, hostname="127.0.0.1", port=self.port)
        self._controller.start()


def test_a_server_that_speaks_only_helo_still_gets_the_mail(
    db: sa.Engine, make_settings: MakeSettings
) -> None:
    """A server that answers EHLO with 502 is greeted with HELO instead, as smtplib does,
    and the prompt is delivered (the handshake is shared with the doctor)."""
    catcher = HeloOnlyCatcher()
    catcher.start()
    try:
        settings = make_settings(smtp_host="127.0.0.1", smtp_port=catcher.port,
                                 smtp_security="none")  # fmt: skip
        _, effect_id, key = record_prompt(db)
        assert deliver(db, settings, [effect_id], now=T0).done == [effect_id]
        (received,) = catcher.received
        assert received.message_id == message_id(key, settings.message_id_domain)
    finally:
        catcher.stop()


# --- pipelining (RFC 2920) -----------------------------------------------------------


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """What the SMTP clients of this test write, one entry per write."""
    seen: list[bytes] = []
    original = smtplib.SMTP.send

    def spy(self: smtplib.SMTP, data: str | bytes) -> None:
        seen.append(data.encode() if isinstance(data, str) else data)
        original(self, data)

    monkeypatch.setattr(smtplib.SMTP, "send", spy)
    return seen


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])
def test_a_server_offering_pipelining_gets_mail_rcpt_and_data_in_one_write(
    db: sa.Engine, smtp: SmtpCatcher, smtp_settings: Settings, writes: list[bytes],
    pipelining: bool,
) -> None:  # fmt: skip
    """Where the server offers PIPELINING, MAIL, RCPT and DATA go in one write and the
    message in the next; elsewhere one command a write, as smtplib sends them. The server
    receives the same messages either way, lines that begin with a dot included."""
    smtp.handler.pipelining = pipelining
    ids = [record_prompt(db, to)[1] for to in (AMIR, MARIA)]
    assert deliver(db, smtp_settings, ids, now=T0).done == ids
    commands = [w for w in writes if w.lower().startswith(b"mail from:")]
    assert len(commands) == 2
    together = [
        b"\r\nrcpt to:" in w.lower() and w.lower().endswith(b"\r\ndata\r\n") for w in commands
    ]
    assert together == [pipelining, pipelining]
    assert [r.envelope_to for r in smtp.received] == [[AMIR], [MARIA]]
    sent = {r.message_id: r.message for r in smtp.received}
    for effect_id in ids:
        row = effect(db, effect_id)
        expected = compose(make_prompt(row.payload["prompt"]["to_email"]), key=row.key,
                           sender=smtp_settings.mail_from,
                           domain=smtp_settings.message_id_domain, created=T0)  # fmt: skip
        got = sent[str(expected["Message-ID"])]
        assert [p.get_content() for p in got.walk() if not p.is_multipart()] == [
            p.get_content() for p in expected.walk() if not p.is_multipart()
        ]


def test_a_message_with_lines_beginning_with_a_dot_arrives_whole_when_pipelined(
    smtp: SmtpCatcher, smtp_settings: Settings
) -> None:
    """Dot-stuffing (RFC 5321 4.5.2): a line of the message that begins with a dot, or is
    only a dot, is not the end of the message."""
    text = "first\r\n.\r\n..two dots\r\n.one dot\r\nlast"
    data = f"Subject: dots\r\nMessage-ID: <dots@kommun.example>\r\n\r\n{text}".encode()
    message = Wire(data=data, sender="council@kommun.example", recipients=(AMIR,),
                   message_id="<dots@kommun.example>")  # fmt: skip
    with SmtpTransport(smtp_settings) as session:
        session.send(message)
    (received,) = smtp.received
    assert received.message.get_content().replace("\r\n", "\n") == text.replace("\r\n", "\n") + "\n"


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])
@pytest.mark.parametrize(
    ("where", "reply", "outcome"),
    [
        ("sender", "550 5.7.1 Sender not allowed", "failed"),
        ("sender", "451 4.3.0 Try again later", "retrying"),
        ("data", "554 5.6.0 Message refused", "failed"),
        ("data", "452 4.3.1 Insufficient storage", "retrying"),
    ],
)
def test_a_refused_sender_or_message_is_judged_the_same_pipelined_or_not(
    db: sa.Engine, smtp: SmtpCatcher, smtp_settings: Settings,
    pipelining: bool, where: str, reply: str, outcome: str,
) -> None:  # fmt: skip
    """A refusal of MAIL FROM or of the message: a 5xx fails the effect at once, a 4xx
    waits for a retry, with or without pipelining. After a permanent refusal the session
    is reset and the batch's next message goes out over it."""
    smtp.handler.pipelining = pipelining
    (smtp.handler.refuse_sender if where == "sender" else smtp.handler.refuse_data).append(reply)
    _, first, _ = record_prompt(db, AMIR)
    _, second, _ = record_prompt(db, MARIA)
    report = deliver(db, smtp_settings, [first, second], now=T0)
    code = reply.split()[0]
    assert code in effect(db, first).detail
    if outcome == "failed":
        assert (report.failed, report.done) == ([first], [second])
        assert [r.envelope_to for r in smtp.received] == [[MARIA]]
    else:
        assert first in report.retrying
        assert effect(db, first).state == EffectState.PENDING.value
        waiting = [e for e in (first, second) if e not in report.done]  # the batch waits
        later = max(next_attempt(db, e) for e in waiting) + dt.timedelta(seconds=0.01)
        assert sorted(deliver(db, smtp_settings, waiting, now=later).done) == waiting
        assert sorted(r.envelope_to[0] for r in smtp.received) == [AMIR, MARIA]


def test_all_recipients_refused_when_pipelined_is_a_refused_recipient(
    db: sa.Engine, smtp: SmtpCatcher, smtp_settings: Settings
) -> None:
    """The server answers the pipelined DATA with 503 once no recipient was accepted:
    that is reported as the recipient refused (permanent for a 550), as without
    pipelining, and the session goes on."""
    smtp.handler.refuse.add(AMIR)
    _, refused, _ = record_prompt(db, AMIR)
    _, accepted, _ = record_prompt(db, MARIA)
    report = deliver(db, smtp_settings, [refused, accepted], now=T0)
    assert (report.failed, report.done) == ([refused], [accepted])
    assert "recipient refused ([550])" in effect(db, refused).detail


def _refusing_server(command: str, reply: bytes) -> tuple[int, threading.Thread]:
    """A one-connection SMTP server on loopback that offers PIPELINING, answers
    ``command`` with ``reply`` and hangs up at once (as some servers do after a 5xx)."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = int(listener.getsockname()[1])

    def serve() -> None:
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as lines:
            conn.sendall(b"220 test\r\n")
            for line in lines:
                verb = line.split(b":")[0].split()[0].lower()
                if verb == b"ehlo":
                    conn.sendall(b"250-test\r\n250-PIPELINING\r\n250 SIZE 100000\r\n")
                elif verb == command:
                    conn.sendall(reply + b"\r\n")
                    break
                else:
                    conn.sendall(b"250 ok\r\n")
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return port, thread


@pytest.mark.parametrize(
    ("command", "reply", "expected"),
    [
        (b"mail", b"554 5.7.1 Go away", "SMTP sending: reply 554"),
        (b"rcpt", b"550 5.1.1 No such user", "recipient refused ([550])"),
    ],
)
def test_a_refusal_followed_by_a_hang_up_is_judged_by_the_refusal(
    make_settings: MakeSettings, command: bytes, reply: bytes, expected: str
) -> None:
    """Pipelined, the replies after a refusal never come when the server hangs up: the
    refusal it did send decides, a 5xx permanent, as without pipelining."""
    port, thread = _refusing_server(command, reply)
    settings = make_settings(smtp_host="127.0.0.1", smtp_port=port)
    message = Wire(data=b"Subject: x\r\n\r\nhello\r\n", sender="council@kommun.example",
                   recipients=(AMIR,), message_id="<x@kommun.example>")  # fmt: skip
    with pytest.raises(DeliveryError) as refused, SmtpTransport(settings) as session:
        session.send(message)
    thread.join(timeout=10)
    assert str(refused.value) == expected
    assert refused.value.transient is False
