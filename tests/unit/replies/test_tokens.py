"""Signed reply addresses: a token names one event, cannot be forged and survives case changes."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from workflow.replies import tokens as replies

SECRET = SecretStr("unit-test-reply-secret-0123456789abcdef")
OTHER = SecretStr("another-installation-secret-abcdef0123456")
MAILBOX = "council@kommun.example"
#: Event ids are BIGINT: below 2**63, well inside the 13 base-36 digits a token holds.
EVENT_IDS = st.integers(min_value=1, max_value=2**63 - 1)


def test_a_token_is_the_event_id_in_base_36_and_a_base_32_mac() -> None:
    token = replies.token(SECRET, 36 * 36 + 35)
    event, _, mac = token.partition(".")
    assert event == "10z"
    assert replies.TOKEN.fullmatch(token)
    assert len(mac) == 24
    assert set(mac) <= set("abcdefghijklmnopqrstuvwxyz234567")


@given(EVENT_IDS)
@settings(max_examples=200)
def test_round_trip(event_id: int) -> None:
    token = replies.token(SECRET, event_id)
    assert replies.verify(SECRET, token) == event_id


@given(EVENT_IDS)
@settings(max_examples=100)
def test_case_does_not_matter(event_id: int) -> None:
    """Mail servers may change the case of a local part."""
    token = replies.token(SECRET, event_id)
    assert replies.verify(SECRET, token.upper()) == event_id
    assert replies.verify(SECRET, token.swapcase()) == event_id


def test_tokens_differ_per_event_and_per_secret() -> None:
    assert replies.token(SECRET, 8) != replies.token(SECRET, 9)
    assert replies.token(SECRET, 8) != replies.token(OTHER, 8)
    assert replies.token(SECRET, 8) == replies.token(SecretStr(SECRET.get_secret_value()), 8)


@given(EVENT_IDS)
@settings(max_examples=100)
def test_a_token_of_another_secret_is_refused(event_id: int) -> None:
    assert replies.verify(SECRET, replies.token(OTHER, event_id)) is None


@given(EVENT_IDS, st.data())
@settings(max_examples=200)
def test_a_tampered_mac_is_refused(event_id: int, data: st.DataObject) -> None:
    event, _, mac = replies.token(SECRET, event_id).partition(".")
    position = data.draw(st.integers(min_value=0, max_value=len(mac) - 1))
    other = data.draw(st.sampled_from("abcdefghijklmnopqrstuvwxyz234567").filter(
        lambda c: c != mac[position]))  # fmt: skip
    tampered = mac[:position] + other + mac[position + 1 :]
    assert replies.verify(SECRET, f"{event}.{tampered}") is None


@given(EVENT_IDS, EVENT_IDS)
@settings(max_examples=200)
def test_another_event_id_under_a_genuine_mac_is_refused(event_id: int, other: int) -> None:
    """Moving a MAC to another event id (someone else's step) does not work."""
    assume(other != event_id)
    _, _, mac = replies.token(SECRET, event_id).partition(".")
    assert replies.verify(SECRET, f"{replies._base36(other)}.{mac}") is None


@pytest.mark.parametrize(
    "candidate",
    [
        "", ".", "8", "8.", ".abcdefghijklmnopqrstuvwx", "0.aaaaaaaaaaaaaaaaaaaaaaaa",
        "-1.aaaaaaaaaaaaaaaaaaaaaaaa", "8.aaaaaaaaaaaaaaaaaaaaaaa", "8.aaaaaaaaaaaaaaaaaaaaaaaaa",
        "8.aaaaaaaaaaaaaaaaaaaaaaa1", "8:aaaaaaaaaaaaaaaaaaaaaaaa", " 8.aaaaaaaaaaaaaaaaaaaaaaaa",
        "8.aaaaaaaaaaaaaaaaaaaaaaaa\n", "\x00", "ß.x", "İ8.x", "1y2p.abcdefghijklmnopqrstuvwx",
        "zzzzzzzzzzzzzz.aaaaaaaaaaaaaaaaaaaaaaaa",
    ],
)  # fmt: skip
def test_malformed_tokens_are_refused(candidate: str) -> None:
    assert replies.verify(SECRET, candidate) is None


def test_event_ids_are_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        replies.token(SECRET, 0)
    with pytest.raises(ValueError, match="positive"):
        replies.token(SECRET, -8)


@given(st.text(max_size=200))
@settings(max_examples=500)
def test_verify_never_raises(candidate: str) -> None:
    assert replies.verify(SECRET, candidate) is None or replies.TOKEN.fullmatch(candidate.lower())


@given(st.from_regex(replies.TOKEN, fullmatch=True))
@settings(max_examples=300)
def test_a_made_up_token_of_the_right_shape_is_refused(candidate: str) -> None:
    """Guessing: a 120-bit MAC is not found by chance."""
    assert replies.verify(SECRET, candidate) is None


# --- addresses -----------------------------------------------------------------------------


def test_address_plus_addresses_the_mailbox() -> None:
    token = replies.token(SECRET, 8)
    assert replies.address(MAILBOX, SECRET, 8) == f"council+{token}@kommun.example"
    # A configured plus-tag is replaced, not nested.
    assert replies.address("council+inbox@kommun.example", SECRET, 8) == (
        f"council+{token}@kommun.example"
    )


@given(EVENT_IDS)
@settings(max_examples=100)
def test_the_token_of_an_address_verifies(event_id: int) -> None:
    address = replies.address(MAILBOX, SECRET, event_id)
    (token,) = replies.tokens_in(MAILBOX, [address])
    assert replies.verify(SECRET, token) == event_id


def test_tokens_in_matches_only_our_mailbox_and_domain() -> None:
    found = replies.tokens_in(
        MAILBOX,
        [
            "council+abc@kommun.example",
            "<COUNCIL+GHI@KOMMUN.EXAMPLE>",
            " council+spaced@kommun.example ",
            "council+def@evil.example",
            "council+sub@mail.kommun.example",
            "council+suffix@kommun.example.evil.example",
            "other+x@kommun.example",
            "xcouncil+x@kommun.example",
            "council@kommun.example",
            "council+@kommun.example",
            "evil@council+q@kommun.example",
            "council+abc",
            "",
        ],
    )
    assert found == ["abc", "ghi", "spaced"]


def test_tokens_in_ignores_the_plus_tag_of_the_configured_mailbox() -> None:
    assert replies.tokens_in("Council+Inbox@Kommun.Example", ["council+abc@kommun.example"]) == [
        "abc"
    ]


@given(st.lists(st.text(max_size=60), max_size=10))
@settings(max_examples=300)
def test_tokens_in_never_raises(addresses: list[str]) -> None:
    for tag in replies.tokens_in(MAILBOX, addresses):
        assert tag
