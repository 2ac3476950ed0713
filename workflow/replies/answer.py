"""The answer to an owner's reply: what was done, or why nothing was (sv and en).

Rendered when the reply is judged, by the same sandboxed, autoescaping templates as
every other e-mail (templates/answer.*), and stored with its effect.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from email.message import EmailMessage

from sqlalchemy.engine import Connection

from workflow.core.plan import StepPlan
from workflow.core.privacy import CONTROL, find_personal_number
from workflow.core.specs import Language, Person
from workflow.errors import RefusalReason
from workflow.mail.compose import Rendered, header_text
from workflow.mail.templating import environment
from workflow.replies.mime import header_str
from workflow.replies.text import KEYWORDS, Verb
from workflow.store import effects
from workflow.store.effects import EffectKind
from workflow.store.replies import ReplyOutcome

LABELS: dict[Language, dict[str, str]] = {
    Language.SV: {
        "hello": "Hej",
        "subject_done": "Registrerat",
        "subject_refused": "Inget gjordes",
        "done": "Tack! Så här registrerades ditt svar:",
        "refused": "Ditt svar kunde inte registreras, så ingenting ändrades.",
        "why": "Orsak",
        "line": "Raden",
        "details": "Närmare bestämt",
        "step": "Moment",
        "point": "Punkt",
        "commands": "Skriv ett kommando per rad överst i ditt svar",
        "footer": "Detta meddelande skickades automatiskt av council.",
        "step.completed": "Momentet är markerat som klart.",
        "step.begun": "Momentet är markerat som påbörjat.",
        "note.added": "Anteckningen är sparad.",
        "step.extension_requested": "Din begäran om mer tid har skickats till samordnaren.",
        "step.reassigned": "Momentet är överlämnat; den nya ansvariga har fått ett meddelande.",
        "too-large": "Meddelandet var för stort.",
        "malformed": "Meddelandet gick inte att läsa.",
        "no-token": "Svaret gick inte till en svarsadress från council.",
        "bad-token": "Svarsadressen är inte giltig.",
        "expired": "Momentet är redan klart, överlämnat eller öppnat igen; svarsadressen gäller "
        "inte längre.",
        "not-owner": "Bara den som är ansvarig för momentet (eller dennes ersättare) kan "
        "svara på det.",
        "empty": "Svaret innehöll inga kommandon.",
        "not-understood": "En rad gick inte att tolka.",
        "too-many": "Svaret innehöll för många kommandon.",
        "too-long": "Texten var för lång.",
        "delay-needs-days": "FÖRSENAD behöver ett antal dagar, till exempel FÖRSENAD 10 dagar.",
        "delegate-needs-person": "DELEGERA behöver en person, till exempel DELEGERA "
        "anna.berg@kommun.example.",
        "note-needs-text": "NOTERING behöver en text.",
        "not-delegable": "Det här momentet får inte delegeras.",
        "unknown-person": "Personen finns inte i council.",
        "not-allowed": "Momentet tillåter inte det just nu.",
    },
    Language.EN: {
        "hello": "Hello",
        "subject_done": "Recorded",
        "subject_refused": "Nothing done",
        "done": "Thank you! Your reply was recorded like this:",
        "refused": "Your reply could not be recorded, so nothing changed.",
        "why": "Reason",
        "line": "The line",
        "details": "In detail",
        "step": "Step",
        "point": "Point",
        "commands": "Write one command per line at the top of your reply",
        "footer": "This message was sent automatically by council.",
        "step.completed": "The step is marked done.",
        "step.begun": "The step is marked started.",
        "note.added": "The note is saved.",
        "step.extension_requested": "Your request for more time went to the coordinator.",
        "step.reassigned": "The step is handed over; its new owner has been told.",
        "too-large": "The message was too large.",
        "malformed": "The message could not be read.",
        "no-token": "The reply did not go to a reply address of council's.",
        "bad-token": "The reply address is not valid.",
        "expired": "The step is already done, handed over or reopened; the reply address no "
        "longer works.",
        "not-owner": "Only the step's owner (or their substitute) can answer it.",
        "empty": "The reply held no commands.",
        "not-understood": "A line could not be understood.",
        "too-many": "The reply held too many commands.",
        "too-long": "The text was too long.",
        "delay-needs-days": "DELAY needs a number of days, e.g. DELAY 10 days.",
        "delegate-needs-person": "DELEGATE needs a person, e.g. DELEGATE anna.berg@kommun.example.",
        "note-needs-text": "NOTE needs a text.",
        "not-delegable": "This step may not be delegated.",
        "unknown-person": "That person is not in council.",
        "not-allowed": "The step does not allow that now.",
    },
}

_HELP: dict[Language, tuple[tuple[Verb, str, str], ...]] = {
    Language.SV: (
        (Verb.DONE, "[anteckning]", "momentet är klart"),
        (Verb.STARTED, "", "du har börjat"),
        (Verb.NOTE, "text", "en anteckning om läget"),
        (Verb.DELAY, "10 dagar", "be samordnaren om mer tid"),
        (Verb.DELEGATE, "person", "lämna över momentet (om det är tillåtet)"),
    ),
    Language.EN: (
        (Verb.DONE, "[note]", "the step is done"),
        (Verb.STARTED, "", "you have begun"),
        (Verb.NOTE, "text", "a note on how it is going"),
        (Verb.DELAY, "10 days", "ask the coordinator for more time"),
        (Verb.DELEGATE, "person", "hand the step over (if allowed)"),
    ),
}


#: Refusals about one line of the reply: the answer quotes it.
_LINE_REASONS = frozenset(
    {"not-understood", "delay-needs-days", "delegate-needs-person", "note-needs-text",
     "not-delegable", "unknown-person", "too-long"}
)  # fmt: skip
#: ... and the engine's own explanation when it refused a command.
_SHOWN_DETAIL = _LINE_REASONS | {"not-allowed"}


def _keyword_for(verb: Verb, lang: Language) -> str:
    words = KEYWORDS[verb]
    english = {Verb.DONE: "done", Verb.STARTED: "started", Verb.NOTE: "note",
               Verb.DELAY: "delay", Verb.DELEGATE: "delegate"}  # fmt: skip
    return (words[0] if lang is Language.SV else english[verb]).upper()


def answer(
    *,
    person: Person,
    outcome: ReplyOutcome,
    done: list[str],
    reason: RefusalReason | None,
    detail: str | None,
    step: StepPlan | None,
    address: str | None,
    subject: str,
    in_reply_to: str | None,
    reply_event: int | None,
) -> Rendered:
    """The answer to a reply, in the sender's language.

    ``done`` lists the event types the reply's commands recorded; ``subject`` is the
    reply's own (sanitised); ``reply_event`` signs the answer's Reply-To while the step
    is still the sender's.
    """
    lang = person.language
    labels = LABELS[lang]
    # Someone else's step: say no more about it than that it is not theirs.
    shown = step is not None and reason is not RefusalReason.NOT_OWNER
    context = {
        "l": labels,
        "lang": lang,
        "name": person.name,
        "outcome": outcome,
        "done": [labels.get(kind, kind) for kind in done],
        "reason": labels.get(reason, reason) if reason else None,
        "detail": quotable(detail, 300) if reason in _SHOWN_DETAIL else None,
        "detail_label": labels["line" if reason in _LINE_REASONS else "details"],
        "step_title": step.title.get(lang) if step is not None and shown else None,
        "address": address if shown else None,
        "help": [(_keyword_for(v, lang), arg, what) for v, arg, what in _HELP[lang]],
    }
    env = environment()
    text = env.get_template("answer.txt").render(context)
    html = env.get_template("answer.html").render(context)
    verdict = labels["subject_done" if outcome is ReplyOutcome.DONE else "subject_refused"]
    quoted = quotable(subject, 150)
    return Rendered(language=lang, to_name=person.name, to_email=str(person.email),
                    subject=f"{verdict}: {quoted}" if quoted else verdict, text=text, html=html,
                    reply_event=reply_event, in_reply_to=in_reply_to)  # fmt: skip


def quotable(text: str | None, limit: int) -> str | None:
    """What of the sender's own text an answer may repeat: never what the guard refuses
    (a personal identity number, control characters), and at most ``limit`` characters."""
    if not text or find_personal_number(text) or CONTROL.search(text):
        return None
    return text[:limit]


def subject_of(message: EmailMessage | None) -> str:
    """The reply's subject as the answer repeats it: one line, sanitised, at most 150 characters."""
    if message is None:
        return ""
    try:
        return header_text(header_str(str(message.get("Subject", ""))))[:150]
    except Exception:  # an unreadable Subject: answer without it
        return ""


def answer_key(message_key: str) -> str:
    """The answer effect's key: one answer per received message."""
    return f"answer:{hashlib.sha256(message_key.encode()).hexdigest()}"


def record_answer(
    conn: Connection, *, message_key: str, rendered: Rendered, now: dt.datetime
) -> int | None:
    """Record the answer as an e-mail effect, once per received message."""
    return effects.record(
        conn, key=answer_key(message_key), kind=EffectKind.ANSWER, event_id=None,
        payload={"message": rendered.model_dump(mode="json"), "created": now.isoformat()},
        now=now,
    )  # fmt: skip
