"""How the inbox knows a message it has seen: its Message-ID, else what the sender wrote."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from workflow.replies.mime import key_of as _key_of

BODY = b"From: amir.hassan@kommun.example\r\nSubject: Re: Task\r\n\r\nKLAR\r\n"


def _parsed(raw: bytes) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    return message


def test_without_message_id_two_routes_give_one_key() -> None:
    """Servers on the way add trace headers; the key ignores them, and line endings."""
    direct = b"Received: from a by b\r\n" + BODY
    forwarded = (
        b"Return-Path: <amir.hassan@kommun.example>\r\nReceived: from c\r\n by d; Mon\r\n"
        b"X-Spam-Score: 0.1\r\nDelivered-To: council+x@kommun.example\r\n"
    ) + BODY.replace(b"\r\n", b"\n")
    assert _key_of(direct).startswith("sha256:")
    assert _key_of(direct) == _key_of(forwarded)


def test_what_the_sender_wrote_changes_the_key() -> None:
    assert _key_of(BODY) != _key_of(BODY.replace(b"KLAR", b"DONE"))
    assert _key_of(BODY) != _key_of(BODY.replace(b"Re: Task", b"Re: Task 2"))


def test_a_message_id_is_the_key_and_a_long_one_is_digested() -> None:
    short = b"Message-ID: <r1@mail.example>\r\n" + BODY
    assert _key_of(short, _parsed(short)) == "<r1@mail.example>"
    long_id = b"<" + b"a" * 220 + b"@mail.example>"
    raw = b"Message-ID: " + long_id + b"\r\n" + BODY
    key = _key_of(raw, _parsed(raw))
    assert key.startswith("mid:")
    assert len(key) <= 200
    assert key == _key_of(b"Received: x\r\n" + raw, _parsed(b"Received: x\r\n" + raw))
