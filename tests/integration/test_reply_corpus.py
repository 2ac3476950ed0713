"""Hostile and broken replies change nothing and crash nothing, on both databases.

Every message of ``tests/fixtures/replies/hostile`` (described, with its expected
outcome, in the README there) is received twice by a real :class:`Inbox` on a
started seed assignment. Whatever it holds, ``receive`` returns a receipt with the
expected outcome and reason; a refused, ignored or duplicate message leaves events,
steps and points as they were; the message is recorded once; an answer mail goes to
a known sender only, once, with nothing of the message rendered unescaped; and the
log names the reason without a word of the message's body.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import structlog
from pydantic import SecretStr
from structlog.testing import capture_logs

import workflow.replies.inbox as inbox_module
from tests.integration.conftest import STOCKHOLM
from tests.support import DEFINITIONS, FIXTURES
from workflow import handlers, store
from workflow.core.actions import CompleteStep, ReassignStep, ReopenStep, WriteOff
from workflow.core.events import EventType
from workflow.engine import Engine
from workflow.mail import compose as mail
from workflow.mail.prompts import build_prompt
from workflow.ops.logs import settle
from workflow.replies import tokens as replies
from workflow.replies.inbox import Inbox, Receipt
from workflow.settings import Settings
from workflow.store import effects as outgoing
from workflow.store import tables

CORPUS = FIXTURES / "replies" / "hostile"
A = "kf-2022-hedersvald"
SECRET = "corpus-reply-secret-0123456789abcdefghij"
OTHER_SECRET = "another-installations-secret-9876543210zyx"
MAILBOX = "council@kommun.example"
#: The seed's points 1 to 4 start on 9 January 2023; replies arrive an hour later.
T0 = dt.datetime(2023, 1, 9, 9, 0, tzinfo=STOCKHOLM)
T_SETUP = T0 + dt.timedelta(minutes=30)
T_RECEIVE = T0 + dt.timedelta(hours=1)
MAX_BYTES = 5_000_000
PLACEHOLDER = re.compile(rb"\{\{[A-Z_]+\}\}")


# --- the corpus and its README -----------------------------------------------------


@dataclass(frozen=True)
class Case:
    file: str
    attack: str
    setup: str
    outcome: str
    reason: str | None
    answer: bool
    events: tuple[str, ...]

    @property
    def path(self) -> Path:
        return CORPUS / self.file


def _cases() -> list[Case]:
    """The rows of the README's table of expected outcomes."""
    cases = []
    for line in (CORPUS / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 7 or not cells[0].endswith(".eml"):
            continue
        file, attack, setup, outcome, reason, answer, events = cells
        cases.append(
            Case(
                file=file,
                attack=attack,
                setup=setup,
                outcome=outcome,
                reason=None if reason == "-" else reason,
                answer={"yes": True, "no": False}[answer],
                events=() if events == "-" else tuple(e.strip() for e in events.split(",")),
            )
        )
    return cases


CASES = _cases()


def test_readme_describes_every_message_of_the_corpus() -> None:
    """Each .eml has one row of expectations and each row a file; at least 24 messages."""
    files = sorted(p.name for p in CORPUS.glob("*.eml"))
    rows = [c.file for c in CASES]
    assert len(rows) == len(set(rows)), "a file has two rows"
    assert sorted(rows) == files
    assert len(files) >= 24
    assert {c.outcome for c in CASES} <= {"done", "refused", "ignored"}
    assert {c.setup for c in CASES} <= set(SETUPS)
    assert all(c.events for c in CASES if c.outcome == "done")
    assert not any(c.events for c in CASES if c.outcome != "done")


# --- the scene -----------------------------------------------------------------------


def _complete(engine: Engine) -> None:
    plan = engine.definitions.assignment(A).point(4)
    engine.act(plan, CompleteStep(actor="amir.hassan", step="map"), now=T_SETUP)


def _reassign(engine: Engine) -> None:
    plan = engine.definitions.assignment(A).point(4)
    engine.act(plan, ReassignStep(actor="sara.nilsson", step="map", to="anders.berg"), now=T_SETUP)


def _complete_reopen(engine: Engine) -> None:
    _complete(engine)
    plan = engine.definitions.assignment(A).point(4)
    engine.act(
        plan,
        ReopenStep(actor="sara.nilsson", step="map", reason="the routes need another look"),
        now=T_SETUP + dt.timedelta(minutes=5),
    )


def _write_off(engine: Engine) -> None:
    plan = engine.definitions.assignment(A).point(4)
    engine.act(plan, WriteOff(actor="sara.nilsson", reason="KS beslut § 12"), now=T_SETUP)


SETUPS = {"-": None, "complete": _complete, "reassign": _reassign,
          "complete+reopen": _complete_reopen, "write-off": _write_off}  # fmt: skip


@dataclass
class Scene:
    engine: Engine
    inbox: Inbox
    settings: Settings
    substitutions: dict[bytes, bytes]


def _settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        reply_secret=SecretStr(SECRET),
        database_url=database_url,
        definitions=DEFINITIONS,
        var_dir=tmp_path / "var",
        mail_from=MAILBOX,
        reply_address=MAILBOX,
        inbox_max_bytes=MAX_BYTES,
    )


def _owner_event(engine: Engine, point: int, step: str) -> int:
    with engine.db.connect() as conn:
        found = store.owner_event(conn, A, point, step)
    assert found is not None
    return found


def _tampered(address: str) -> str:
    """The address with the last character of its MAC changed (still base 32)."""
    local, _, domain = address.rpartition("@")
    last = local[-1]
    return f"{local[:-1]}{'b' if last != 'b' else 'c'}@{domain}"


def _substitutions(engine: Engine) -> dict[bytes, bytes]:
    secret = SecretStr(SECRET)
    map_event = _owner_event(engine, 4, "map")
    analyse_event = _owner_event(engine, 1, "analyse")
    started = [
        i for i, e in engine.events(assignment=A, point=4) if e.type is EventType.POINT_STARTED
    ]
    address = replies.address(MAILBOX, secret, map_event)
    values = {
        "TOKEN_ADDRESS": address,
        "TOKEN": replies.token(secret, map_event),
        "TOKEN_ADDRESS_ANALYSE": replies.address(MAILBOX, secret, analyse_event),
        "TOKEN_ADDRESS_BAD_MAC": _tampered(address),
        "TOKEN_ADDRESS_OTHER_SECRET": replies.address(MAILBOX, SecretStr(OTHER_SECRET), map_event),
        "TOKEN_ADDRESS_NOT_OWNER_EVENT": replies.address(MAILBOX, secret, started[0]),
        "TOKEN_ADDRESS_NO_EVENT": replies.address(MAILBOX, secret, 999_999_999),
    }
    subs = {f"{{{{{k}}}}}".encode(): v.encode() for k, v in values.items()}
    line = base64.b64encode(b"\x89PNG routes " * 57)[:76] + b"\n"
    subs[b"{{HUGE_ATTACHMENT}}"] = line * ((MAX_BYTES + 1_000_000) // len(line))
    return subs


@pytest.fixture
def scene(engine: Engine, database_url: str, tmp_path: Path) -> Scene:
    """The seed assignment started, and an inbox on the same database."""
    engine.start(A, actor="sara.nilsson", now=T0)
    settings = _settings(database_url, tmp_path)
    return Scene(engine, Inbox(engine, settings), settings, _substitutions(engine))


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Every log entry of the inbox, as structlog received it (before any redaction)."""
    settle()  # a configuration left for the first record would come over the capture
    # A fresh proxy: a logger cached before this test could hold an older processor list.
    monkeypatch.setattr(inbox_module, "log", structlog.get_logger("workflow.replies.inbox"))
    # And every level: an earlier in-process CLI test may have configured WARNING and up.
    saved = structlog.get_config()
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=False,
    )
    try:
        with capture_logs() as entries:
            yield entries
    finally:
        structlog.configure(**saved)


def _message(scene: Scene, case: Case) -> bytes:
    raw = case.path.read_bytes()
    for placeholder, value in scene.substitutions.items():
        raw = raw.replace(placeholder, value)
    left = PLACEHOLDER.findall(raw)
    assert not left, f"{case.file}: unknown placeholders {left}"
    return raw


# --- what the database holds ---------------------------------------------------------


def _rows(db: sa.Engine, table: sa.Table) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        query = sa.select(table).order_by(*table.primary_key.columns)
        return [tuple(row) for row in conn.execute(query)]


def _state(db: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    return {t.name: _rows(db, t) for t in (tables.events, tables.steps, tables.points)}


def _effects(db: sa.Engine) -> list[sa.Row[Any]]:
    with db.connect() as conn:
        return list(conn.execute(sa.select(tables.effects).order_by(tables.effects.c.id)))


def _replies(db: sa.Engine) -> list[sa.Row[Any]]:
    with db.connect() as conn:
        return list(conn.execute(sa.select(tables.replies)))


def _new_event_types(db: sa.Engine, since: int) -> list[str]:
    with db.connect() as conn:
        query = sa.select(tables.events.c.type).where(tables.events.c.id > since)
        return [row.type for row in conn.execute(query.order_by(tables.events.c.id))]


def _last_event_id(db: sa.Engine) -> int:
    with db.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(tables.events.c.id))).scalar_one())


# --- what must never be in an answer or a log ----------------------------------------


class _Markup(HTMLParser):
    """The tags and attributes of an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(name for name, _ in attrs)


def assert_inert_html(html: str) -> None:
    """No script, no image, no event handler: whatever came in is text, escaped."""
    markup = _Markup()
    markup.feed(html)
    markup.close()
    assert not {"script", "img", "iframe", "object", "embed", "svg"} & set(markup.tags)
    assert not [a for a in markup.attributes if a.startswith("on")], markup.attributes
    lowered = html.lower()
    assert "<script" not in lowered
    assert "<img" not in lowered


def _body_lines(raw: bytes) -> list[str]:
    """The distinctive lines of a message's body (as text), to look for in the logs."""
    _, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    text = body[:200_000].decode("utf-8", errors="replace")
    return sorted({line.strip() for line in text.splitlines() if len(line.strip()) >= 8})


def _answer_of(effect: sa.Row[Any]) -> mail.Rendered:
    return mail.Rendered.model_validate(effect.payload["message"])


# --- the corpus ------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.file.removesuffix(".eml") for c in CASES])
def test_hostile_reply(case: Case, scene: Scene, logs: list[dict[str, Any]]) -> None:
    """One message of the corpus, received twice: the outcome its README row expects."""
    db = scene.engine.db
    setup = SETUPS[case.setup]
    if setup is not None:
        setup(scene.engine)
    raw = _message(scene, case)
    before, effects_before = _state(db), _effects(db)
    last_event = _last_event_id(db)

    receipt = scene.inbox.receive(raw, now=T_RECEIVE)
    after, effects_after = _state(db), _effects(db)
    again = scene.inbox.receive(raw, now=T_RECEIVE + dt.timedelta(minutes=5))

    # The outcome, and what it changed.
    assert isinstance(receipt, Receipt)
    assert (receipt.outcome, receipt.reason) == (case.outcome, case.reason), case.attack
    if case.outcome == "done":
        assert _new_event_types(db, last_event) == list(case.events)
        assert receipt.event_ids
        assert min(receipt.event_ids) > last_event
        assert receipt.person == "amir.hassan"
        assert receipt.step == f"{A}/4/map"
    else:
        assert after == before, f"{case.file} changed the state"
        assert receipt.event_ids == ()

    # The same bytes again: nothing at all.
    assert again.outcome == "duplicate"
    assert again.message_key == receipt.message_key
    assert (again.event_ids, again.effect_ids) == ((), ())
    assert _state(db) == after
    assert [e.id for e in _effects(db)] == [e.id for e in effects_after]

    # Recorded once, with its outcome.
    recorded = _replies(db)
    assert [(r.message_key, r.outcome, r.reason) for r in recorded] == [
        (receipt.message_key, case.outcome, case.reason)
    ]
    assert recorded[0].person == receipt.person
    assert recorded[0].event_ids == (list(receipt.event_ids) if case.outcome == "done" else None)

    # An answer only to a known sender, once; nothing of the message live in it.
    new_effects = effects_after[len(effects_before) :]
    assert [e.id for e in effects_before] == [e.id for e in effects_after[: len(effects_before)]]
    answers = [e for e in new_effects if e.kind == "answer"]
    assert len(new_effects) == len(answers), "a reply recorded another kind of effect"
    assert len(answers) == (1 if case.answer else 0)
    assert receipt.effect_ids == tuple(e.id for e in answers)
    if case.answer:
        assert receipt.person is not None
        _check_answer(scene, receipt, answers[0])
    else:
        assert recorded[0].person is None

    # The log names the outcome and the reason, never the body.
    _check_logs(case, receipt, raw, logs)


def _check_answer(scene: Scene, receipt: Receipt, effect: sa.Row[Any]) -> None:
    person = scene.engine.definitions.directory.people[receipt.person or ""]
    answer = _answer_of(effect)
    assert answer.to_email == str(person.email)
    assert answer.to_name == person.name
    assert "\r" not in answer.subject
    assert "\n" not in answer.subject
    assert_inert_html(answer.html)
    # Whatever the message said, the answer, as sent, goes to the directory's address only.
    composed = mail.compose_rendered(
        answer, key=effect.key, sender=scene.settings.mail_from,
        domain=scene.settings.message_id_domain, created=T_RECEIVE,
    )  # fmt: skip
    sent = BytesParser(policy=policy.default).parsebytes(composed.as_bytes())
    assert [str(a.addr_spec) for h in sent.get_all("To") or [] for a in h.addresses] == [
        str(person.email)
    ]
    for header in ("Cc", "Bcc", "Resent-To", "Resent-Cc", "Resent-Bcc", "Reply-To"):
        assert sent.get(header) is None, header
    assert str(sent["Subject"]).strip() == answer.subject


def _check_logs(case: Case, receipt: Receipt, raw: bytes, logs: list[dict[str, Any]]) -> None:
    mine = [e for e in logs if str(e.get("event", "")).startswith("reply.")]
    if case.outcome in ("refused", "ignored"):
        named = [e for e in mine if e["event"] == f"reply.{case.outcome}"]
        assert named, f"no reply.{case.outcome} line"
        assert {e.get("reason") for e in named} == {case.reason}
        assert all(e.get("message") == receipt.message_key for e in named)
    else:
        assert [e["event"] for e in mine][:1] == ["reply.done"]
    logged = repr(logs)
    for line in _body_lines(raw):
        assert line not in logged, f"the log holds body text: {line[:60]!r}"


# --- a closer look at some messages ----------------------------------------------------


def _receive_file(scene: Scene, name: str, now: dt.datetime = T_RECEIVE) -> Receipt:
    case = next(c for c in CASES if c.file == name)
    return scene.inbox.receive(_message(scene, case), now=now)


def test_replay_through_another_route_is_a_duplicate(scene: Scene) -> None:
    """The same Message-ID with other bytes (another Received header) is not run again."""
    case = next(c for c in CASES if c.file == "replay-same-message-id.eml")
    raw = _message(scene, case)
    first = scene.inbox.receive(raw, now=T_RECEIVE)
    state = _state(scene.engine.db)
    relayed = b"Received: from mx2.kommun.example by mx.kommun.example; " + b"Mon, 9 Jan 2023\r\n"
    again = scene.inbox.receive(relayed + raw, now=T_RECEIVE + dt.timedelta(hours=1))
    assert first.outcome == "done"
    assert again.outcome == "duplicate"
    assert again.message_key == first.message_key
    assert _state(scene.engine.db) == state
    assert len(_replies(scene.engine.db)) == 1


def test_a_note_with_markup_is_stored_as_text_and_shown_escaped(scene: Scene) -> None:
    """Jinja and HTML in a note are kept verbatim as text, never evaluated, and escaped
    wherever they are shown again: the answer, and the prompt of the next owner."""
    db = scene.engine.db
    receipt = _receive_file(scene, "note-jinja-html-injection.eml")
    assert receipt.outcome == "done"
    with db.connect() as conn:
        note = store.get_event(conn, receipt.event_ids[0])
    assert note is not None
    assert note.type is EventType.NOTE_ADDED
    text = note.data["text"]
    assert "{{ 7*7 }}" in text
    assert "49" not in text
    assert "{% for x in range(9) %}x{% endfor %}" in text
    assert "<script>alert(1)</script>" in text
    assert "<img src=x onerror=alert(1)>" in text
    assert "&lt;b&gt;" in text  # a plain-text reply is not unescaped either
    (answer_effect,) = [e for e in _effects(db) if e.id in receipt.effect_ids]
    answer = _answer_of(answer_effect)
    assert_inert_html(answer.html)
    assert "alert(1)" not in answer.html + answer.text  # the answer does not echo notes

    # The owner hands the step over; the new owner's prompt shows the note, escaped.
    address = scene.substitutions[b"{{TOKEN_ADDRESS}}"].decode()
    delegate = (
        "From: Amir Hassan <amir.hassan@kommun.example>\r\n"
        f"To: {address}\r\nSubject: Re: Task\r\n"
        "Message-ID: <delegate-after-note@mail.kommun.example>\r\n\r\n"
        "DELEGATE anders.berg@kommun.example\r\n"
    ).encode()
    handed = scene.inbox.receive(delegate, now=T_RECEIVE + dt.timedelta(minutes=10))
    assert (handed.outcome, handed.reason) == ("done", None)
    (reassigned,) = handed.event_ids
    with db.connect() as conn:
        event = store.get_event(conn, reassigned)
        assert event is not None
        assert event.type is EventType.STEP_REASSIGNED
        prompt = build_prompt(conn, scene.engine.definitions, reassigned, event, STOCKHOLM)
    assert prompt is not None
    assert prompt.to_email == "anders.berg@kommun.example"
    assert [n.text for n in prompt.notes] == [text]
    _, html = mail.render(prompt, reply_to="council+x@kommun.example")
    assert_inert_html(html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "{{ 7*7 }}" in html


def test_a_refused_line_comes_back_escaped_and_unevaluated(scene: Scene) -> None:
    """The line that could not be read is quoted in the answer: escaped, not evaluated."""
    receipt = _receive_file(scene, "refused-line-html-injection.eml")
    assert (receipt.outcome, receipt.reason) == ("refused", "not-understood")
    (effect,) = [e for e in _effects(scene.engine.db) if e.id in receipt.effect_ids]
    answer = _answer_of(effect)
    assert_inert_html(answer.html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer.html
    assert "&lt;img src=x onerror=alert(1)&gt;" in answer.html
    assert "{{ cycler.__init__.__globals__ }}" in answer.html
    assert "{{ cycler.__init__.__globals__ }}" in answer.text
    assert "__builtins__" not in answer.html + answer.text


PERSONAL_NUMBERS = (
    "note-personnummer.eml",
    "note-personnummer-en-dash.eml",
    "note-personnummer-fullwidth.eml",
    "note-personnummer-wrapped.eml",
    "note-personnummer-spaced.eml",
    "note-personnummer-zero-width.eml",
    "note-personnummer-double-space.eml",
    "subject-personnummer.eml",
    "message-id-personnummer.eml",
    "refused-line-personnummer.eml",
)


def _stored(db: sa.Engine) -> str:
    """Everything a reply may leave behind, as text (NFKC: fullwidth digits are digits)."""
    text = repr(_rows(db, tables.events)) + repr(_replies(db)) + repr(_effects(db))
    return unicodedata.normalize("NFKC", text)


@pytest.mark.parametrize("name", PERSONAL_NUMBERS)
def test_a_personal_identity_number_is_never_kept_or_echoed(scene: Scene, name: str) -> None:
    """However it is written (an en dash, fullwidth digits, wrapped, spaced), in a note, the
    subject or a line that is no command: the number is in no event, reply record or answer
    mail (its subject, text and HTML)."""
    receipt = _receive_file(scene, name)
    assert receipt.person == "amir.hassan"
    stored = _stored(scene.engine.db)
    for digits in ("19121212", "121212", "1212121212"):
        assert digits not in stored, name
    (effect,) = [e for e in _effects(scene.engine.db) if e.id in receipt.effect_ids]
    answer = _answer_of(effect)
    shown = unicodedata.normalize("NFKC", answer.subject + answer.text + answer.html)
    assert "1212" not in shown


def test_a_reply_without_a_valid_token_gets_a_fixed_subject(scene: Scene) -> None:
    """Whoever forged the sender chose the Subject: the answer repeats none of it."""
    receipt = _receive_file(scene, "token-missing-chosen-subject.eml")
    assert (receipt.outcome, receipt.reason) == ("refused", "no-token")
    (effect,) = [e for e in _effects(scene.engine.db) if e.id in receipt.effect_ids]
    answer = _answer_of(effect)
    assert answer.subject == "Nothing done"  # amir.hassan reads English
    assert "spam.example" not in answer.subject + answer.text + answer.html


def _refusal(scene: Scene, n: int, *, to: str, line: str | None = None) -> bytes:
    """Message ``n`` from amir.hassan to ``to`` whose one line is no command (or ``line``)."""
    return (
        "From: Amir Hassan <amir.hassan@kommun.example>\r\n"
        f"To: {to}\r\nSubject: Re: Task\r\n"
        f"Message-ID: <refusal-{n}@mail.kommun.example>\r\n\r\n{line or f'KALR {n}'}\r\n"
    ).encode()


def test_answers_are_limited_per_person_and_hour(scene: Scene) -> None:
    """A forged sender cannot make council mail a person without end: at most
    reply_answers_per_hour answers an hour (5), the rest recorded unanswered; an hour later
    answers resume."""
    mailbox = "Council <council@kommun.example>"
    receipts = [
        scene.inbox.receive(_refusal(scene, n, to=mailbox), now=T_RECEIVE + dt.timedelta(minutes=n))
        for n in range(8)
    ]  # fmt: skip
    assert [r.reason for r in receipts] == ["no-token"] * 8
    assert [bool(r.effect_ids) for r in receipts] == [True] * 5 + [False] * 3
    answered = {r.message_key: r.answered for r in _replies(scene.engine.db)}
    assert sorted(answered.values()) == [False] * 3 + [True] * 5
    later = scene.inbox.receive(
        _refusal(scene, 99, to=mailbox), now=T_RECEIVE + dt.timedelta(hours=2)
    )
    assert later.effect_ids


def test_a_token_is_told_each_refusal_once(scene: Scene) -> None:
    """Two replies on the same token refused for the same reason get one answer; another
    reason gets its own."""
    token = scene.substitutions[b"{{TOKEN_ADDRESS}}"].decode()
    first = scene.inbox.receive(_refusal(scene, 1, to=token), now=T_RECEIVE)
    second = scene.inbox.receive(
        _refusal(scene, 2, to=token), now=T_RECEIVE + dt.timedelta(minutes=1)
    )
    other = scene.inbox.receive(
        _refusal(scene, 3, to=token, line="DELAY soon"), now=T_RECEIVE + dt.timedelta(minutes=2)
    )
    assert [r.reason for r in (first, second, other)] == [
        "not-understood", "not-understood", "delay-needs-days"
    ]  # fmt: skip
    assert [bool(r.effect_ids) for r in (first, second, other)] == [True, False, True]


def test_an_answer_still_waiting_is_handed_over_again_on_a_retry(scene: Scene) -> None:
    """When handing an answer to the workers failed after the reply committed, the sending
    server's retry is a duplicate that names the answer still waiting; once it is sent,
    a retry names nothing."""
    token = scene.substitutions[b"{{TOKEN_ADDRESS}}"].decode()
    raw = _refusal(scene, 1, to=token)
    first = scene.inbox.receive(raw, now=T_RECEIVE)
    assert first.effect_ids
    again = scene.inbox.receive(raw, now=T_RECEIVE + dt.timedelta(minutes=5))
    assert again.outcome == "duplicate"
    assert again.effect_ids == ()
    assert scene.inbox.waiting_answer(again.message_key) == list(first.effect_ids)
    with scene.engine.db.begin() as conn:
        (answer_id,) = first.effect_ids
        assert outgoing.claim(conn, answer_id, now=T_RECEIVE) is not None
        outgoing.finish(conn, answer_id, now=T_RECEIVE)
    assert scene.inbox.waiting_answer(again.message_key) == []


def test_delegate_then_done_prompts_nobody_for_the_done_step(scene: Scene) -> None:
    """DELEGATE and DONE in one reply: the step is handed over and done at once; the
    handlers prompt the owners of the steps that became active, not the new owner of the
    finished one."""
    db = scene.engine.db
    receipt = _receive_file(scene, "delegate-then-done.eml")
    assert receipt.outcome == "done"
    recorded = [
        effect_id
        for event_id in receipt.event_ids
        for effect_id in handlers.dispatch(
            db, scene.engine.definitions, scene.settings, event_id, now=T_RECEIVE, tz=STOCKHOLM
        ).recorded
    ]
    prompts = [e for e in _effects(db) if e.id in recorded and e.kind == "prompt"]
    assert sorted(e.payload["prompt"]["step"] for e in prompts) == ["indicators", "survey"]


def test_html_only_reply_runs_only_its_visible_text(scene: Scene) -> None:
    """DONE inside <script>, a blockquote or a comment is not run; the visible NOTE is."""
    db = scene.engine.db
    for offset, name in enumerate(
        ("html-only-script.eml", "html-blockquote-hidden-command.eml", "html-comment-command.eml")
    ):
        receipt = _receive_file(scene, name, T_RECEIVE + dt.timedelta(minutes=offset))
        assert receipt.outcome == "done", name
        with db.connect() as conn:
            (event,) = [store.get_event(conn, i) for i in receipt.event_ids]
        assert event is not None
        assert event.type is EventType.NOTE_ADDED
        assert "DONE" not in event.data["text"]
        assert "KLAR" not in event.data["text"]
    state, _ = scene.engine.point_state(scene.engine.definitions.assignment(A).point(4))
    assert state.step("map").status.value == "active"
    assert state.step("map").owner == "amir.hassan"
