"""Free text is refused when it holds a Swedish personal identity number, and only then."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow.core.privacy import MAX_TEXT, clean_text, find_personal_number, luhn_ok
from workflow.errors import InvalidInput, PersonalDataRefused


def check_digit(nine: str) -> str:
    """The Luhn check digit of YYMMDDNNN, computed independently of the code under test."""
    total = 0
    for i, char in enumerate(nine):
        product = int(char) * (2 - i % 2)
        total += product // 10 + product % 10
    return str((10 - total % 10) % 10)


def number(birth: dt.date, serial: int, *, coordination: bool = False) -> tuple[str, str]:
    """(century digits, ten-digit number) of a personnummer or samordningsnummer."""
    day = birth.day + (60 if coordination else 0)
    nine = f"{birth:%y%m}{day:02d}{serial:03d}"
    return f"{birth:%Y}"[:2], nine + check_digit(nine)


def formats(century: str, ten: str) -> list[str]:
    """The ways a number is written: 10 or 12 digits, with '-', '+', ' ' or nothing."""
    date, tail = ten[:6], ten[6:]
    return [
        f"{date}-{tail}",
        f"{date}{tail}",
        f"{date}+{tail}",
        f"{date} {tail}",
        f"{century}{date}-{tail}",
        f"{century}{date}{tail}",
    ]


def spoil(ten: str, by: int) -> str:
    """The same number with its check digit changed, so the Luhn check fails."""
    return ten[:-1] + str((int(ten[-1]) + by) % 10)


births = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2024, 12, 31))
serials = st.integers(min_value=0, max_value=999)


# --- refused ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "19121212-1212",
        "121212-1212",
        "1212121212",
        "191212121212",
        "121212+1212",
        "121212 1212",
        "Tolvan Tolvansson, 19121212-1212, har kontaktats.",
        "pnr:121212-1212.",
        "19811218-9876",
        "811218-9876",
    ],
)
def test_skatteverket_test_personnummer_is_refused(text):
    """Skatteverket's test numbers, in every written form and inside prose, are refused."""
    with pytest.raises(PersonalDataRefused) as info:
        clean_text("note", text)
    assert info.value.field == "note"


@pytest.mark.parametrize("text", ["701063-2391", "19701063-2391", "7010632391", "121272-1219"])
def test_samordningsnummer_is_refused(text):
    """A samordningsnummer (day of birth + 60) is refused like a personnummer."""
    with pytest.raises(PersonalDataRefused):
        clean_text("reason", text)


def test_refusal_is_invalid_input_and_does_not_repeat_the_number():
    """The refusal is an InvalidInput naming the field, and never echoes the number itself."""
    with pytest.raises(InvalidInput) as info:
        clean_text("reason", "Gäller 19121212-1212")
    assert isinstance(info.value, PersonalDataRefused)
    assert "reason" in str(info.value)
    assert "1212" not in str(info.value)


def test_find_personal_number_returns_the_match():
    """find_personal_number returns the number as written, the first one found."""
    assert find_personal_number("a 121212-1212 b 811218-9876") == "121212-1212"
    assert find_personal_number("ingen här") is None


@settings(max_examples=150, deadline=None)
@given(birth=births, serial=serials, coordination=st.booleans(), which=st.integers(0, 5))
def test_any_valid_number_is_refused(birth, serial, coordination, which):
    """Every Luhn-valid personnummer or samordningsnummer, in any form, in any text, is refused."""
    century, ten = number(birth, serial, coordination=coordination)
    written = formats(century, ten)[which]
    with pytest.raises(PersonalDataRefused):
        clean_text("note", f"Samtal med {written} idag.")


# --- accepted --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "19121212-1213",
        "121212-1213",
        "1212121213",
        "701063-2392",
    ],
)
def test_bad_check_digit_is_accepted(text):
    """A number that fails the Luhn check is not a personal identity number."""
    assert clean_text("note", text) == text


@pytest.mark.parametrize(
    "text",
    [
        "Ring 070-123 45 67 eller 08-123 456 78.",
        "Växeln: +46 8 123 456 78",
        "Möte 2024-06-21 kl. 10:30",
        "Beslut 20240621, § 87",
        "Diarienummer KS 2022/123",
        "Dnr KS 2022/0123 och KS 2022-00123",
        "Budget 1 500 000 kr",
        "Version 1.2.3, punkt 4 av 7",
    ],
)
def test_ordinary_numbers_are_accepted(text):
    """Phone numbers, dates, diarienummer and amounts pass through unchanged."""
    assert clean_text("note", text) == text


@pytest.mark.parametrize(
    ("date", "why"),
    [("991312", "month 13"), ("991200", "day 0"), ("991232", "day 32"), ("991292", "day 92")],
)
def test_impossible_dates_are_not_numbers(date, why):
    """A Luhn-valid ten digits whose date part is no date is accepted."""
    nine = date + "123"
    text = nine[:6] + "-" + nine[6:] + check_digit(nine)
    assert luhn_ok(text.replace("-", "")), why
    assert find_personal_number(text) is None


def test_digits_inside_a_longer_number_are_not_a_match():
    """A personnummer-shaped run inside a longer run of digits is not picked out."""
    assert find_personal_number("001212121212") is None
    assert find_personal_number("12121212129") is None


@settings(max_examples=150, deadline=None)
@given(
    birth=births,
    serial=serials,
    coordination=st.booleans(),
    which=st.integers(0, 5),
    by=st.integers(1, 9),
)
def test_spoiled_check_digit_is_accepted(birth, serial, coordination, which, by):
    """The same numbers with a wrong check digit are accepted."""
    century, ten = number(birth, serial, coordination=coordination)
    written = formats(century, spoil(ten, by))[which]
    text = f"Samtal med {written} idag."
    assert clean_text("note", text) == text


# --- Luhn ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("digits", "ok"),
    [("1212121212", True), ("8112189876", True), ("7010632391", True), ("1212121213", False)],
)
def test_luhn_examples(digits, ok):
    """luhn_ok accepts Skatteverket's test numbers and refuses a changed check digit."""
    assert luhn_ok(digits) is ok


@settings(max_examples=150, deadline=None)
@given(nine=st.text(alphabet="0123456789", min_size=9, max_size=9), by=st.integers(1, 9))
def test_luhn_has_exactly_one_check_digit(nine, by):
    """For any nine digits exactly one tenth digit passes the Luhn check."""
    good = nine + check_digit(nine)
    assert luhn_ok(good)
    assert not luhn_ok(spoil(good, by))


# --- the rest of clean_text ------------------------------------------------------


def test_blank_text_is_none_unless_required():
    """Missing or blank text is None, or InvalidInput when the field is required."""
    assert clean_text("note", None) is None
    assert clean_text("note", "  \n ") is None
    with pytest.raises(InvalidInput, match="reason is required"):
        clean_text("reason", None, required=True)
    with pytest.raises(InvalidInput, match="reason is required"):
        clean_text("reason", "   ", required=True)


def test_text_is_stripped_and_keeps_line_breaks():
    """Surrounding whitespace is removed; inner line breaks and tabs are kept."""
    assert clean_text("note", "  Rad ett\nRad\ttvå  ") == "Rad ett\nRad\ttvå"


def test_text_length_is_bounded():
    """MAX_TEXT characters are accepted, one more is refused."""
    assert clean_text("note", "x" * MAX_TEXT) == "x" * MAX_TEXT
    with pytest.raises(InvalidInput, match="too long"):
        clean_text("note", "x" * (MAX_TEXT + 1))


@pytest.mark.parametrize(
    "char",
    [
        "\x00", "\x07", "\x1b", "\x7f",  # C0 and DEL
        "\x80", "\x9b", "\x9f",  # C1: \x9b is CSI, the one-byte ESC [
        "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",  # embeddings and overrides
        "\u2066", "\u2067", "\u2068", "\u2069",  # isolates
    ],
)  # fmt: skip
def test_control_characters_and_direction_overrides_are_refused(char):
    """C0 and C1 controls (other than line breaks and tabs) and bidirectional overrides,
    which make a note read other than it is written, are refused."""
    with pytest.raises(InvalidInput, match="control characters"):
        clean_text("note", f"a{char}b")


@pytest.mark.parametrize(
    "text",
    [
        "19121212\u20131212",  # en dash
        "19121212\u20141212",  # em dash
        "19121212\u22121212",  # minus sign
        "19121212\u20111212",  # non-breaking hyphen
        "19121212\uff0d1212",  # fullwidth hyphen-minus
        "19121212 - 1212",  # spaces around the dash
        "121212 -1212",
        "121212\t+\t1212",  # a plus: over a hundred years old
        "19121212-\n1212",  # wrapped after the dash
        "19121212\n-1212",  # wrapped before it
        "1912121\n2-1212",  # wrapped inside the date
        "191212\r\n121212",  # wrapped, no dash
        "\uff11\uff19\uff11\uff12\uff11\uff12\uff11\uff12-\uff11\uff12\uff11\uff12",  # fullwidth
        "１９１２１２１２\u20131212",  # fullwidth digits and an en dash
        "19121212\u200b-1212",  # a zero-width space
        "19121212-\u20601212",  # a word joiner
        "\ufeff19121212-1212",  # a byte-order mark
        "19121212\u200e-1212",  # a left-to-right mark
        "121212  1212",  # two spaces
        "19121212\xa0\xa01212",  # two no-break spaces
        "121212-\n\n1212",  # a blank line between the parts
        "121212\n \n 1212",
    ],
)
def test_the_guard_reads_the_number_however_it_is_written(text):
    """A personnummer written with another dash, spaces around the dash, fullwidth digits,
    or wrapped across two lines is refused like 19121212-1212."""
    assert find_personal_number(text) is not None
    with pytest.raises(PersonalDataRefused):
        clean_text("note", f"Samtal med {text} i dag.")
