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
    owner_event: int | None = None,
    answered: bool = False,
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
            owner_event=owner_event,
            answered=answered,
        )
    )


def answers_since(conn: Connection, person: str, since: dt.datetime) -> int:
    """How many replies of this person were answered since then."""
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(
                replies.c.person == person,
                replies.c.received_at >= utc(since),
                replies.c.answered.is_(True),
            )
        ).scalar_one()
    )


def refusal_answered(
    conn: Connection, person: str, owner_event: int, reason: RefusalReason | None
) -> bool:
    """Whether a reply on this token was refused for this reason and answered before."""
    found = conn.execute(
        sa.select(replies.c.message_key).where(
            replies.c.person == person,
            replies.c.owner_event == owner_event,
            replies.c.outcome == ReplyOutcome.REFUSED.value,
            replies.c.reason.is_(None) if reason is None else replies.c.reason == reason.value,
            replies.c.answered.is_(True),
        )
    ).first()
    return found is not None
