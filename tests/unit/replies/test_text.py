"""Reading a reply: the fresh text above quotes and signatures, HTML as text, the commands."""

from __future__ import annotations

from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow.replies.text import (
    KEYWORDS,
    MAX_COMMANDS,
    MAX_FRESH_LINES,
    MAX_TEXT,
    Verb,
    body_text,
    fresh_lines,
    html_to_text,
    read_commands,
)

# --- fresh_lines -------------------------------------------------------------------

#: (what ends the fresh text, a reply whose fresh text is exactly ["NOTE mapped", "the routes"]).
ENDINGS = {
    "sv-gmail-header": "Den 9 jan. 2023 kl. 09:00 skrev Council <council@kommun.example>:\n> Hej",
    "sv-header-name-only": "Den mån 9 jan. 2023 kl 09:00 skrev Council:\n> Hej",
    "sv-header-verb-last": "Den 9 jan. 2023 kl. 09:00 skrev:\n> Hej",
    "en-gmail-header": (
        "On Mon, Jan 9, 2023 at 9:00 AM Council <council@kommun.example> wrote:\n> Hello"
    ),
    "en-header-short": "On 2023-01-09 09:00, council@kommun.example wrote:\n> Hello",
    "outlook-en": (
        "From: Council <council@kommun.example>\nSent: Monday, January 9, 2023 9:00 AM\n"
        "To: Amir Hassan\nSubject: Task\n\nDONE"
    ),
    "outlook-en-bold": "*From:* Council <council@kommun.example>\n*Sent:* Monday\nDONE",
    "outlook-sv": (
        "Från: Council <council@kommun.example>\nSkickat: den 9 januari 2023 09:00\n"
        "Till: Amir Hassan\nÄmne: Uppgift\n\nKLAR"
    ),
    "outlook-sv-datum": "Från: Council <council@kommun.example>\nDatum: 9 jan 2023\nKLAR",
    "outlook-underscores": "________________________________\nFrån: Council\nKLAR",
    "original-message": "-----Original Message-----\nFrom: Council\nDONE",
    "ursprungligt-meddelande": "-----Ursprungligt meddelande-----\nKLAR",
    "forwarded": "---------- Forwarded message ---------\nDONE",
    "signature-dash-dash-space": "-- \nAmir Hassan\nUtredare\nDONE",
    "signature-dash-dash": "--\nAmir Hassan\nDONE",
    "mvh": "Mvh\nAmir\nDONE",
    "mvh-comma": "Mvh,\nAmir",
    "med-vanliga-halsningar": "Med vänliga hälsningar\nAmir\nKLAR",
    "halsningar": "Hälsningar\nAmir\nKLAR",
    "regards": "Best regards,\nAmir\nDONE",
    "kind-regards": "Kind regards\nAmir",
    "thanks": "Thanks!\nAmir\nDONE",
    "skickat-fran-min-iphone": "Skickat från min iPhone\n\n> KLAR",
    "sent-from-my-iphone": "Sent from my iPhone\nDONE",
    "get-outlook-for-android": "Get Outlook for Android<https://aka.ms/AAb9ysg>\nDONE",
    "hamta-outlook-for-ios": "Hämta Outlook för iOS\nKLAR",
    "quoted-line": "> DONE\n> KLAR",
}


@pytest.mark.parametrize("ending", ENDINGS.values(), ids=ENDINGS.keys())
def test_fresh_text_ends_where_the_history_begins(ending: str) -> None:
    """Quote headers (sv, en), Outlook blocks, separators, signatures, sign-offs, footers."""
    reply = f"NOTE mapped\nthe routes\n{ending}\n"
    assert fresh_lines(reply) == ["NOTE mapped", "the routes"]


@pytest.mark.parametrize("ending", ENDINGS.values(), ids=ENDINGS.keys())
def test_nothing_after_the_fresh_text_is_read_as_a_command(ending: str) -> None:
    """Whatever the history holds (DONE, KLAR), only the command above it is read."""
    reading = read_commands(fresh_lines(f"NOTE mapped\n\n{ending}\n"))
    assert reading.problem is None
    assert [(c.verb, c.text) for c in reading.commands] == [(Verb.NOTE, "mapped")]


@pytest.mark.parametrize(
    "header",
    [
        "Den 9 jan. 2023 kl. 09:00 skrev Council <council@kommun.example>:",
        "Den mån 9 jan. 2023 kl 09:00 skrev Council <council@kommun.example>:",
        "On Mon, Jan 9, 2023 at 9:00 AM Council <council@kommun.example> wrote:",
    ],
    ids=["sv", "sv-weekday", "en"],
)
def test_a_quote_header_right_below_a_command_is_not_its_text(header: str) -> None:
    """Clients put the attribution right below the reply: it is no note, no argument."""
    done = read_commands(fresh_lines(f"KLAR\n{header}\n> Hej Amir\n"))
    assert (done.problem, [(c.verb, c.text) for c in done.commands]) == (None, [(Verb.DONE, None)])
    handed = read_commands(fresh_lines(f"DELEGERA anders.berg\n{header}\n> Hej Amir\n"))
    assert handed.problem is None
    assert [(c.verb, c.person) for c in handed.commands] == [(Verb.DELEGATE, "anders.berg")]


def test_fresh_lines_trim_blank_lines_and_whitespace_and_keep_inner_blanks() -> None:
    assert fresh_lines("\r\n\r\n   KLAR  \r\n\r\n  NOTE x\u00a0y \r\n\r\n\r\n") == [
        "KLAR",
        "",
        "NOTE x y",
    ]


def test_fresh_lines_split_on_any_line_end() -> None:
    assert fresh_lines("DONE\rNOTE a\r\nNOTE b\nNOTE c") == ["DONE", "NOTE a", "NOTE b", "NOTE c"]


def test_fresh_lines_stop_at_the_limit() -> None:
    lines = fresh_lines("\n".join(f"line {i}" for i in range(MAX_FRESH_LINES * 3)))
    assert len(lines) == MAX_FRESH_LINES
    assert lines[-1] == f"line {MAX_FRESH_LINES - 1}"


def test_an_outlook_from_line_alone_is_fresh_text() -> None:
    """'From:' ends the fresh text only when Sent:/To:/Subject: follow (an Outlook block)."""
    reply = "NOTE x\nFrom: the archive, we learnt\nthat it works\n"
    assert fresh_lines(reply) == ["NOTE x", "From: the archive, we learnt", "that it works"]


def test_empty_text_has_no_fresh_lines() -> None:
    assert fresh_lines("") == []
    assert fresh_lines("\n \n\t\n") == []
    assert fresh_lines("> KLAR\n") == []


# --- html_to_text ----------------------------------------------------------------------

HTML = {
    "gmail-quote": (
        '<div dir="ltr">DONE<br>all good</div><br><div class="gmail_quote">'
        '<div class="gmail_attr">On Mon wrote:</div><blockquote>KLAR</blockquote></div>',
        ["DONE", "all good"],
    ),
    "outlook-divrplyfwdmsg": (
        '<div>NOTE mapped</div><hr style="display:inline-block"><div id="divRplyFwdMsg">'
        "<b>From:</b> Council<br><b>Sent:</b> Monday</div><div>DONE</div>",
        ["NOTE mapped"],
    ),
    "outlook-web-x-prefix": (
        '<p>NOTE mapped</p><div class="x_divRplyFwdMsg">DONE</div>',
        ["NOTE mapped"],
    ),
    "thunderbird-moz-cite": (
        '<p>NOTE mapped</p><div class="moz-cite-prefix">On Mon wrote:</div><p>DONE</p>',
        ["NOTE mapped"],
    ),
    "blockquote": ("<p>NOTE mapped</p><blockquote>DONE</blockquote><p>KLAR</p>", ["NOTE mapped"]),
    "br-and-blocks": (
        "NOTE a<br>b<br/>c<div>DONE</div><p>KLAR</p>",
        ["NOTE a", "b", "c", "DONE", "KLAR"],
    ),
    # Outlook and Apple Mail: a <div> per typed line, an empty one between paragraphs.
    "div-per-line": (
        "<div>NOTE a</div><div>b</div><div><br></div><div>Anna</div>",
        ["NOTE a", "b", "", "Anna"],
    ),
    "outlook-msonormal": (
        '<p class="MsoNormal">NOTE a<o:p></o:p></p><p class="MsoNormal">b<o:p></o:p></p>'
        '<p class="MsoNormal"><o:p>&nbsp;</o:p></p><p class="MsoNormal">Anna<o:p></o:p></p>',
        ["NOTE a", "b", "", "Anna"],
    ),
    "entities": (
        "<p>NOTE a &amp; b &lt;script&gt; &quot;q&quot; &#229;&#x00e4; &auml;&nbsp;x</p>",
        ['NOTE a & b <script> "q" åä ä x'],
    ),
    "script-style-title-dropped": (
        "<html><head><title>DONE</title><style>p { color: red }</style>"
        "<script>KLAR</script></head><body><script>DONE</script>"
        "<p>NOTE visible</p><template>KLAR</template></body></html>",
        ["NOTE visible"],
    ),
    "newlines-in-source-are-spaces": (
        "<p>NOTE mapped\n  the\n routes</p>",
        ["NOTE mapped the routes"],
    ),
    "comments-dropped": ("<p>NOTE a</p><!-- DONE --><p><!--\nKLAR\n--></p>", ["NOTE a"]),
}


@pytest.mark.parametrize(("html", "expected"), HTML.values(), ids=HTML.keys())
def test_html_is_read_as_its_visible_fresh_text(html: str, expected: list[str]) -> None:
    assert fresh_lines(html_to_text(html)) == expected


def test_html_to_text_keeps_markup_in_text_as_text() -> None:
    """Escaped markup becomes plain characters, never tags: nothing is rendered or run."""
    text = html_to_text("<p>&lt;img src=x onerror=alert(1)&gt;</p><img src=x onerror=alert(2)>")
    assert text.strip() == "<img src=x onerror=alert(1)>"
    assert "alert(2)" not in text


def test_html_with_an_unclosed_script_shows_nothing_after_it() -> None:
    assert html_to_text("<p>DONE</p><script>x = 1; <p>KLAR</p>").strip() == "DONE"


# --- body_text -------------------------------------------------------------------------


def _message(raw: str) -> EmailMessage:
    parsed = BytesParser(policy=policy.default).parsebytes(raw.encode())
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_body_text_prefers_plain_text_to_html() -> None:
    message = EmailMessage()
    message.set_content("NOTE from the plain part\n")
    message.add_alternative("<p>DONE from the html part</p>", subtype="html")
    assert body_text(message) == "NOTE from the plain part\n"


def test_body_text_reads_an_html_only_reply_through_the_conversion() -> None:
    message = _message(
        "Content-Type: text/html; charset=utf-8\n\n"
        '<p>NOTE &lt;b&gt;</p><div class="gmail_quote">DONE</div><script>KLAR</script>\n'
    )
    text = body_text(message)
    assert text is not None
    assert fresh_lines(text) == ["NOTE <b>"]


def test_body_text_of_a_message_with_only_an_attachment_is_none() -> None:
    message = EmailMessage()
    message.add_attachment(b"DONE", maintype="application", subtype="octet-stream")
    assert body_text(message) is None


def test_body_text_decodes_the_declared_charset() -> None:
    raw = (
        b"Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\n"
        b"NOTERING p\xe5b\xf6rjad\n"
    )
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(parsed, EmailMessage)
    assert body_text(parsed) == "NOTERING påbörjad\n"


# --- read_commands -----------------------------------------------------------------------

ALL_KEYWORDS = [(verb, word) for verb, words in KEYWORDS.items() for word in words]


@pytest.mark.parametrize(("verb", "word"), ALL_KEYWORDS, ids=[w for _, w in ALL_KEYWORDS])
@pytest.mark.parametrize("spelling", [str.upper, str.lower, str.capitalize, lambda w: w + ":"])
def test_every_keyword_in_both_languages_any_case_with_or_without_colon(
    verb: Verb, word: str, spelling: Callable[[str], str]
) -> None:
    argument = {Verb.DELAY: "10", Verb.DELEGATE: "anders.berg"}.get(verb, "")
    line = f"{spelling(word)} {argument}".strip()
    reading = read_commands([line])
    assert reading.problem is None, line
    assert [c.verb for c in reading.commands] == [verb]
    assert reading.commands[0].line == line


def test_both_languages_have_a_keyword_for_every_verb() -> None:
    swedish = {"klar", "påbörjad", "notering", "försenad", "delegera"}
    english = {"done", "started", "note", "delay", "delegate"}
    words = {w for ws in KEYWORDS.values() for w in ws}
    assert swedish <= words
    assert english <= words
    assert set(KEYWORDS) == set(Verb)


def test_a_keyword_with_a_colon_and_punctuation_keeps_its_text() -> None:
    reading = read_commands(["NOTE: the routes are mapped", "Klart.", "**KLAR**"])
    assert reading.problem is None
    assert [(c.verb, c.text) for c in reading.commands] == [
        (Verb.NOTE, "the routes are mapped"),
        (Verb.DONE, None),
        (Verb.DONE, None),
    ]


@pytest.mark.parametrize(
    ("line", "days", "text"),
    [
        ("DELAY 10", 10, None),
        ("FÖRSENAD 10 dagar", 10, None),
        ("försenad 10 dagar.", 10, None),
        ("DELAY 10 days", 10, None),
        ("DELAY 10d", 10, None),
        ("DELAY 1 dag", 1, None),
        ("FÖRSENAD 2 veckor", 14, None),
        ("FÖRSENAD 1 vecka", 7, None),
        ("DELAY 3 weeks", 21, None),
        ("DELAY 3 w", 21, None),
        ("DELAY: 2 veckor, väntar på polisen", 14, "väntar på polisen"),
        ("delay 10 days - waiting for the police", 10, "waiting for the police"),
        ("FORSENAD 5", 5, None),
    ],
)
def test_delay_reads_days_or_weeks(line: str, days: int, text: str | None) -> None:
    reading = read_commands([line])
    assert reading.problem is None
    (command,) = reading.commands
    assert (command.verb, command.days, command.text) == (Verb.DELAY, days, text)


@pytest.mark.parametrize(
    ("line", "person"),
    [
        ("DELEGATE anders.berg", "anders.berg"),
        ("DELEGERA anders.berg@kommun.example", "anders.berg@kommun.example"),
        ("delegate: <anders.berg@kommun.example>.", "anders.berg@kommun.example"),
        ("Delegera socialchef", "socialchef"),
    ],
)
def test_delegate_names_one_person_by_id_role_or_email(line: str, person: str) -> None:
    reading = read_commands([line])
    assert reading.problem is None
    (command,) = reading.commands
    assert (command.verb, command.person, command.text) == (Verb.DELEGATE, person, None)


def test_continuation_lines_extend_the_text_above() -> None:
    reading = read_commands(["NOTE the routes", "are mapped", "by the team", "", "Amir"])
    assert reading.problem is None
    (command,) = reading.commands
    assert command.text == "the routes are mapped by the team"
    assert command.line == "NOTE the routes"


def test_done_and_delay_take_continued_text_too() -> None:
    reading = read_commands(["DONE", "all routes mapped", "DELAY 5", "waiting for", "the police"])
    assert [(c.verb, c.text, c.days) for c in reading.commands] == [
        (Verb.DONE, "all routes mapped", None),
        (Verb.DELAY, "waiting for the police", 5),
    ]


def test_a_blank_line_ends_the_continuation_and_what_follows_is_ignored() -> None:
    reading = read_commands(["NOTE a", "", "Amir Hassan", "Utredare", "DONE"])
    assert reading.problem is None
    assert [(c.verb, c.text) for c in reading.commands] == [(Verb.NOTE, "a")]


def test_a_command_after_a_blank_line_is_still_a_command() -> None:
    reading = read_commands(["NOTE a", "", "DONE"])
    assert [c.verb for c in reading.commands] == [Verb.NOTE, Verb.DONE]


@pytest.mark.parametrize(
    ("lines", "problem", "detail"),
    [
        ([], "empty", None),
        (["Hello, I am done"], "not-understood", "Hello, I am done"),
        (["DELEGATE anders.berg", "because"], "not-understood", "because"),
        ([f"NOTE {i}" for i in range(MAX_COMMANDS + 1)], "too-many", None),
        (["NOTE " + "x" * (MAX_TEXT + 1)], "too-long", None),
        (["NOTE " + "x" * MAX_TEXT, "more"], "too-long", None),
        (["DELAY"], "delay-needs-days", "DELAY"),
        (["DELAY soon"], "delay-needs-days", "DELAY soon"),
        (["FÖRSENAD tio dagar"], "delay-needs-days", "FÖRSENAD tio dagar"),
        (["DELAY 12345"], "delay-needs-days", "DELAY 12345"),
        (["DELEGATE"], "delegate-needs-person", "DELEGATE"),
        (["DELEGERA Anders Berg"], "delegate-needs-person", "DELEGERA Anders Berg"),
    ],
    ids=[
        "empty", "not-understood", "delegate-takes-no-text", "too-many", "too-long",
        "too-long-continued", "delay-alone", "delay-words", "delay-words-sv", "delay-five-digits",
        "delegate-alone", "delegate-full-name",
    ],
)  # fmt: skip
def test_problems(lines: list[str], problem: str, detail: str | None) -> None:
    reading = read_commands(lines)
    assert reading.problem == problem
    if detail is not None:
        assert reading.detail == detail


def test_exactly_the_maximum_of_commands_and_text_is_fine() -> None:
    reading = read_commands([f"NOTE {i}" for i in range(MAX_COMMANDS)])
    assert reading.problem is None
    assert len(reading.commands) == MAX_COMMANDS
    assert read_commands(["NOTE " + "x" * MAX_TEXT]).problem is None


def test_too_long_names_the_command_line() -> None:
    reading = read_commands(["DONE", "NOTE start", "y" * MAX_TEXT])
    assert (reading.problem, reading.detail) == ("too-long", "NOTE start")


# --- never raises --------------------------------------------------------------------------

_LINE = st.one_of(
    st.text(max_size=80),
    st.sampled_from([w for _, w in ALL_KEYWORDS]).flatmap(
        lambda w: st.text(max_size=40).map(lambda rest: f"{w} {rest}")
    ),
    st.just(""),
)


@given(st.lists(_LINE, max_size=30))
@settings(max_examples=300, deadline=None)
def test_read_commands_never_raises_and_stays_within_its_limits(lines: list[str]) -> None:
    reading = read_commands(lines)
    if reading.problem is None:
        assert len(reading.commands) <= MAX_COMMANDS
        assert all(c.text is None or len(c.text) <= MAX_TEXT for c in reading.commands)
        assert all(c.days is not None for c in reading.commands if c.verb is Verb.DELAY)
        assert all(c.person for c in reading.commands if c.verb is Verb.DELEGATE)
    else:
        assert reading.problem in {
            "empty", "not-understood", "too-many", "too-long", "delay-needs-days",
            "delegate-needs-person",
        }  # fmt: skip


@given(st.text(max_size=2000))
@settings(max_examples=300, deadline=None)
def test_fresh_lines_never_raise_and_never_keep_a_quoted_line(text: str) -> None:
    lines = fresh_lines(text)
    assert len(lines) <= MAX_FRESH_LINES
    assert not any(line.startswith(">") for line in lines)
    assert not lines or (lines[0] and lines[-1])


@given(st.text(max_size=2000))
@settings(max_examples=300, deadline=None)
def test_html_to_text_never_raises(html: str) -> None:
    assert isinstance(html_to_text(html), str)
