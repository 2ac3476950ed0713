"""Reading an owner's reply: the fresh text of a message, and the commands in it.

Pure functions. The fresh text is what the owner wrote above the quoted
history, a signature or a mobile footer; HTML-only replies are read through a
text conversion that drops quoted blocks. Commands are recognised in Swedish
and English at the start of a line:

    KLAR / DONE [note]            complete the step
    PÅBÖRJAD / STARTED [note]     record that work has begun
    NOTERING / NOTE text          add a progress note
    FÖRSENAD / DELAY N [days]     ask the coordinator for N more days
    DELEGERA / DELEGATE person    hand the step to someone else (if allowed)

The first fresh line must be a command. A line that is not a command continues
the text of the command above it (a note, or a reason for a delay); a blank
line ends that, and anything after a blank line that is not a command is
ignored (an unmarked signature). Nothing here is ever executed or rendered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import EmailMessage, MIMEPart
from enum import StrEnum
from html.parser import HTMLParser

from workflow.errors import RefusalReason


class Verb(StrEnum):
    DONE = "done"
    STARTED = "started"
    NOTE = "note"
    DELAY = "delay"
    DELEGATE = "delegate"


#: The keywords of each verb, case-folded; the first of each is what mails show.
KEYWORDS: dict[Verb, tuple[str, ...]] = {
    Verb.DONE: ("klar", "klart", "done"),
    Verb.STARTED: ("påbörjad", "påbörjat", "paborjad", "started", "begun"),
    Verb.NOTE: ("notering", "anteckning", "note"),
    Verb.DELAY: ("försenad", "forsenad", "delay"),
    Verb.DELEGATE: ("delegera", "delegate"),
}
_VERB_OF = {word: verb for verb, words in KEYWORDS.items() for word in words}
#: Verbs whose command takes text, on its line or continued on the next ones.
_TAKES_TEXT = {Verb.DONE, Verb.STARTED, Verb.NOTE, Verb.DELAY}

MAX_COMMANDS = 10
MAX_FRESH_LINES = 60
MAX_TEXT = 2000

_QUOTE_HEADER = re.compile(
    r"^(on|den|am|le|el)\b.{0,200}\b(wrote|skrev|schrieb|a écrit|escribió)\b.{0,200}:\s*$", re.I
)
_SEPARATOR = re.compile(
    r"^(-{2,}\s*(original message|ursprungligt meddelande|originalmeddelande|"
    r"forwarded message|vidarebefordrat meddelande)\s*-*|_{10,}|-{10,})\s*$",
    re.I,
)
_OUTLOOK_FROM = re.compile(r"^\*?(from|från|frÃ¥n)\s*:\*?\s+\S", re.I)
_OUTLOOK_NEXT = re.compile(r"^\*?(sent|skickat|date|datum|to|till|subject|ämne)\s*:", re.I)
_FOOTER = re.compile(
    r"^(sent from|sent with|skickat från|skickades från|get outlook for|hämta outlook för|"
    r"download outlook for|envoyé de)\b",
    re.I,
)
_SIGN_OFF = re.compile(
    r"^(mvh|m\.v\.h\.?|med vänlig(a)? hälsning(ar)?|vänlig(a)? hälsning(ar)?|hälsningar|"
    r"hälsning|regards|best regards|kind regards|best wishes|best|thanks|thank you|tack|"
    r"cheers)\s*[,.!]?\s*$",
    re.I,
)
_DELAY = re.compile(
    r"^(\d{1,4})\s*(d|dag|dagar|day|days|v|vecka|veckor|w|wk|week|weeks)?\b\.?\s*[,:;-]?\s*(.*)$",
    re.I | re.S,
)
_WEEKS = {"v", "vecka", "veckor", "w", "wk", "week", "weeks"}


@dataclass(frozen=True)
class ReplyCommand:
    """One command read from a reply."""

    verb: Verb
    line: str
    text: str | None = None
    days: int | None = None
    person: str | None = None


@dataclass
class Reading:
    """What a reply says: its commands, or why it could not be read."""

    commands: list[ReplyCommand] = field(default_factory=list)
    #: Why it could not be read (empty, not understood, too many...); None when read.
    problem: RefusalReason | None = None
    #: The line that could not be understood, for the answer mail.
    detail: str | None = None


# --- the fresh text ----------------------------------------------------------------


def fresh_lines(text: str) -> list[str]:
    """The lines the owner wrote, before quotes, signatures and footers."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    fresh: list[str] = []
    for index, raw in enumerate(lines):
        line = raw.strip().replace("\u00a0", " ")
        if _ends_fresh_text(raw, line, lines[index + 1 : index + 4]):
            break
        fresh.append(line)
        if len(fresh) >= MAX_FRESH_LINES:
            break
    while fresh and not fresh[0]:
        fresh.pop(0)
    while fresh and not fresh[-1]:
        fresh.pop()
    return fresh


def _ends_fresh_text(raw: str, line: str, following: list[str]) -> bool:
    if raw.rstrip("\n") in ("--", "-- ") or line.startswith(">"):
        return True
    if _SEPARATOR.match(line) or _FOOTER.match(line):
        return True
    # "On Mon, 9 Jan 2023 council <council@...> wrote:", often wrapped over two lines
    joined = " ".join([line, *(n.strip() for n in following[:1])])
    if _QUOTE_HEADER.match(line) or _QUOTE_HEADER.match(joined):
        return True
    if _SIGN_OFF.match(line):
        return True
    return bool(_OUTLOOK_FROM.match(line)) and any(
        _OUTLOOK_NEXT.match(n.strip()) for n in following
    )


class _HtmlText(HTMLParser):
    """Visible text of an HTML reply, up to where the quoted history starts."""

    _BLOCKS = frozenset(
        {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"}
    )
    _INVISIBLE = frozenset({"style", "script", "head", "title", "template"})
    _HISTORY_MARKERS = ("gmail_quote", "moz-cite-prefix", "divrplyfwdmsg", "appendonsend",
                        "yahoo_quoted", "protonmail_quote", "x_divrplyfwdmsg")  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done:
            return
        marks = " ".join(f"{v or ''}" for k, v in attrs if k in ("class", "id")).lower()
        if tag in ("blockquote", "hr") or any(m in marks for m in self._HISTORY_MARKERS):
            self.done = True
        elif tag in self._INVISIBLE:
            self.hidden += 1
        elif tag == "br":
            self.parts.append("\n")  # always a line: <div><br></div> is an empty line
        elif tag in self._BLOCKS:
            self._line_break()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._INVISIBLE and self.hidden:
            self.hidden -= 1
        elif tag in self._BLOCKS and tag != "br" and not self.done:
            self._line_break()

    def _line_break(self) -> None:
        """One line per block: neighbouring <div>s or <p>s are lines, not paragraphs."""
        if self.parts and not self.parts[-1].endswith("\n"):
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.done and not self.hidden:
            self.parts.append(" ".join(data.split()) if "\n" in data else data)


def html_to_text(html: str) -> str:
    """The visible text of an HTML reply, without its quoted history."""
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)


class Undecodable(ValueError):
    """A text part's bytes contradict the charset it declares."""


def body_text(message: EmailMessage) -> str | None:
    """The reply's text: its first text/plain part, else its HTML part as text.

    A part that declares a charset its bytes are not (invalid UTF-8 under
    ``charset=utf-8``, say) raises :class:`Undecodable`: decoding it anyway would
    store U+FFFD where the owner wrote something. A part that declares none is read
    leniently, as mail clients do.
    """
    for subtype in ("plain", "html"):
        part = message.get_body(preferencelist=(subtype,))
        if part is None:
            continue
        _check_charset(part)
        content = part.get_content()
        if not isinstance(content, str):
            continue
        return content if subtype == "plain" else html_to_text(content)
    return None


def _check_charset(part: MIMEPart) -> None:
    charset = part.get_param("charset")
    if not isinstance(charset, str):
        return
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return
    try:
        payload.decode(charset)
    except (UnicodeDecodeError, LookupError) as exc:
        raise Undecodable(f"the bytes are not {charset}") from exc


# --- commands ----------------------------------------------------------------------


def _keyword(line: str) -> tuple[Verb | None, str]:
    """The verb a line starts with (if any) and the rest of the line."""
    match = re.match(r"^([^\s:]+)\s*:?\s*(.*)$", line, re.S)
    if match is None:
        return None, line
    word = match[1].strip(".,!;:*").casefold()
    return _VERB_OF.get(word), match[2].strip()


def _command(verb: Verb, line: str, rest: str) -> ReplyCommand | RefusalReason:
    """A command from its verb and the rest of its line, or what is wrong with it."""
    if verb is Verb.DELAY:
        found = _DELAY.match(rest)
        if found is None:
            return RefusalReason.DELAY_NEEDS_DAYS
        days = int(found[1]) * (7 if (found[2] or "").casefold() in _WEEKS else 1)
        return ReplyCommand(verb, line, text=found[3].strip() or None, days=days)
    if verb is Verb.DELEGATE:
        person = rest.strip().strip("<>.,;")
        if not person or len(person.split()) != 1:
            return RefusalReason.DELEGATE_NEEDS_PERSON
        return ReplyCommand(verb, line, person=person)
    return ReplyCommand(verb, line, text=rest or None)


def _extend(command: ReplyCommand, line: str) -> ReplyCommand:
    text = f"{command.text} {line}" if command.text else line
    return ReplyCommand(command.verb, command.line, text=text, days=command.days,
                        person=command.person)  # fmt: skip


def _continue(reading: Reading, line: str, continuing: bool) -> bool:
    """A line that is no command: more text for the command above, or the end of them."""
    last = reading.commands[-1] if reading.commands else None
    if last is None or (continuing and last.verb not in _TAKES_TEXT):
        reading.problem, reading.detail = RefusalReason.NOT_UNDERSTOOD, line
        return True
    if continuing:
        reading.commands[-1] = _extend(last, line)
        return True
    return False


def read_commands(lines: list[str]) -> Reading:
    """The commands in the fresh lines of a reply, all or nothing."""
    reading = Reading()
    if not lines:
        reading.problem = RefusalReason.EMPTY
        return reading
    continuing = True
    for line in lines:
        if not line:
            continuing = False
            continue
        verb, rest = _keyword(line)
        if verb is None:
            if not _continue(reading, line, continuing):
                break  # text after a blank line: a signature without a marker
        else:
            made = _command(verb, line, rest)
            if isinstance(made, RefusalReason):
                reading.problem, reading.detail = made, line
            else:
                reading.commands.append(made)
                continuing = True
                if len(reading.commands) > MAX_COMMANDS:
                    reading.problem = RefusalReason.TOO_MANY
        if reading.problem:
            return reading
    too_long = [c for c in reading.commands if c.text is not None and len(c.text) > MAX_TEXT]
    if too_long:
        reading.problem, reading.detail = RefusalReason.TOO_LONG, too_long[0].line
    return reading
