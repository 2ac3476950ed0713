"""Received replies: each message recorded once, by its key, with what became of it.

The key is the message's Message-ID (or a digest of what the sender wrote): a
message is judged once, whichever way it arrives and however often.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from workflow.errors import RefusalReason
from workflow.store.tables import replies, utc


class ReplyOutcome(StrEnum):
    """What became of a received message."""

    DONE = "done"  # its commands ran
    REFUSED = "refused"  # nothing changed, for a reason
    IGNORED = "ignored"  # sent by a machine: nothing changed, no answer
    DUPLICATE = "duplicate"  # seen before: nothing again (never stored)


def seen(conn: Connection, message_key: str) -> bool:
    """Whether a message with this key was judged before."""
    found = conn.execute(
        sa.select(replies.c.message_key).where(replies.c.message_key == message_key)
    ).first()
    return found is not None


def record(
    conn: Connection,
    *,
    message_key: str,
    outcome: ReplyOutcome,
    now: dt.datetime,
    sender: str | None = None,
    person: str | None = None,
    step: str | None = None,
    reason: RefusalReason | None = None,
    event_ids: Sequence[int] = (),
) -> None:
    """Record the message's outcome; a second record of the same key raises IntegrityError."""
    conn.execute(
        replies.insert().values(
            message_key=message_key,
            received_at=utc(now),
            sender=sender[:320] if sender else None,
            person=person,
            step=step,
            outcome=outcome.value,
            reason=reason.value if reason else None,
            event_ids=list(event_ids) or None,
        )
    )
