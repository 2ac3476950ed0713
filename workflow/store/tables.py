"""The tables: SQLAlchemy 2 Core, one metadata, names by convention.

The ``events`` table is the truth and the audit trail (append-only, ids
increase monotonically). ``points`` and ``steps`` are projections kept in the
same transaction for fast queries, and ``points.version`` is the optimistic
lock; ``points.snapshot`` is the point's state as of its last event, so that a command
need not replay the log. ``outbox`` lists events still to publish; ``effects`` records each side
effect once, by a unique key, for the workers; ``firings`` records each
deadline firing once; ``replies`` each received reply once; ``planned_starts`` the
points the sweep will start on their day; ``definition_versions`` each version of an
assignment's definition; ``site_pending`` the public assignments whose site pages are
behind their events.

Nothing outside :mod:`workflow.store` touches a table: the rest of council
calls the store's functions.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
#: Event ids: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Stamp = sa.DateTime(timezone=True)

assignments = sa.Table(
    "assignments",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("structure", sa.JSON, nullable=False),
    sa.Column("source", sa.String(500), nullable=False),
    sa.Column("started_at", Stamp, nullable=False),
)

points = sa.Table(
    "points",
    metadata,
    sa.Column("assignment", sa.String(64), sa.ForeignKey("assignments.id"), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("category", sa.String(16), nullable=False),
    sa.Column("started_at", Stamp),
    sa.Column("completed_at", Stamp),
    sa.Column("written_off_at", Stamp),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", Stamp, nullable=False),
    # The point's state (without its notes) as of ``last_event_id``, the last of its events
    # folded in, written with that event in one transaction; ``last_event_at`` is when it
    # happened. NULL until the first command after 0012 (a replay builds it then).
    sa.Column("snapshot", sa.JSON),
    sa.Column("last_event_id", BigId),
    sa.Column("last_event_at", Stamp),
)

steps = sa.Table(
    "steps",
    metadata,
    sa.Column("assignment", sa.String(64), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("step", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("due", sa.Date),
    sa.Column("activated_at", Stamp),
    sa.Column("begun_at", Stamp),
    sa.Column("finished_at", Stamp),
    sa.Column("held_since", Stamp),
    # The first day the deadline sweep must look at this step; indexed, so a
    # sweep reads only what is due, however many steps are open.
    sa.Column("next_check_at", sa.Date),
    sa.ForeignKeyConstraint(["assignment", "number"], ["points.assignment", "points.number"]),
    sa.Index("ix_steps_owner_status", "owner", "status"),
    sa.Index("ix_steps_next_check_at", "next_check_at"),
)

definition_versions = sa.Table(
    "definition_versions",
    metadata,
    # Every version of an assignment's definition that was started or amended: the file's
    # text, its digest and resolved plan, and when it took effect. A report as of a date
    # renders with the version in force then.
    sa.Column("assignment", sa.String(64), sa.ForeignKey("assignments.id"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("plan", sa.JSON, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("source", sa.String(500), nullable=False),
    sa.Column("effective_at", Stamp, nullable=False),
    sa.Column("accepted_by", sa.String(64), nullable=False),
)

planned_starts = sa.Table(
    "planned_starts",
    metadata,
    # A point of a started assignment whose planned start is still ahead: the sweep
    # starts it on ``start_on`` (its planned start, or the first business day after)
    # and deletes the row in the same transaction.
    sa.Column("assignment", sa.String(64), sa.ForeignKey("assignments.id"), primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("start_on", sa.Date, nullable=False),
    sa.Column("planned_at", Stamp, nullable=False),
    sa.Index("ix_planned_starts_start_on", "start_on"),
)

site_pending = sa.Table(
    "site_pending",
    metadata,
    # A public assignment with events the public site does not show yet: marked when a
    # worker has handled one of its events, cleared by the publisher once a build that
    # read them is in force (only if not marked again meanwhile). No foreign key: an
    # assignment that is gone is marked so that its pages are removed.
    sa.Column("assignment", sa.String(64), primary_key=True),
    sa.Column("marked_at", Stamp, nullable=False),
)

firings = sa.Table(
    "firings",
    metadata,
    # (step, due date, kind, level): each reminder or escalation of a due date, once.
    sa.Column("key", sa.String(300), primary_key=True),
    sa.Column("assignment", sa.String(64), nullable=False),
    sa.Column("point", sa.Integer, nullable=False),
    sa.Column("step", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("level", sa.Integer, nullable=False),
    sa.Column("fired_at", Stamp, nullable=False),
    sa.Column("event_id", BigId, sa.ForeignKey("events.id")),
    # The sweep transaction that fired it: its escalations make one digest per person.
    sa.Column("sweep", sa.String(32)),
    sa.Index("ix_firings_sweep", "sweep"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("assignment", sa.String(64), nullable=False),
    # NULL for an event of the whole assignment (a report asked for).
    sa.Column("point", sa.Integer),
    sa.Column("step", sa.String(64)),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("occurred_at", Stamp, nullable=False),
    sa.Column("recorded_at", Stamp, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
    # Who entered it on the actor's behalf, and the OS login of the process that wrote it.
    sa.Column("recorded_by", sa.String(64)),
    sa.Column("login", sa.String(64)),
    sa.Index("ix_events_assignment_point_id", "assignment", "point", "id"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("event_id", BigId, sa.ForeignKey("events.id"), nullable=False, unique=True),
    sa.Column("created_at", Stamp, nullable=False),
    sa.Column("published_at", Stamp),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    # A relay holds a row until then while it publishes; a crashed relay's
    # claim simply expires.
    sa.Column("claimed_until", Stamp),
    # Set when every handler subscribed to the event has processed it.
    sa.Column("handled_at", Stamp),
    # A dispatch holds the event until then while it runs the handlers, renewing it as
    # it goes; past it, with the event not handled, the dispatch died with its worker.
    sa.Column("dispatch_until", Stamp),
    # How often the reconciler published the event again, and when it may do so next
    # (the wait doubles each time: a backlog is not flooded with copies).
    sa.Column("republished", sa.Integer, nullable=False, server_default="0"),
    sa.Column("republish_after", Stamp),
    sa.Index("ix_outbox_unpublished", "published_at", "id"),
    sa.Index("ix_outbox_unhandled", "handled_at", "published_at"),
)

processed = sa.Table(
    "processed",
    metadata,
    sa.Column("event_id", BigId, sa.ForeignKey("events.id"), primary_key=True),
    sa.Column("handler", sa.String(80), primary_key=True),
    sa.Column("processed_at", Stamp, nullable=False),
)

effects = sa.Table(
    "effects",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(200), nullable=False, unique=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("event_id", BigId, sa.ForeignKey("events.id")),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", Stamp, nullable=False),
    sa.Column("done_at", Stamp),
    sa.Column("detail", sa.Text),
    sa.Column("payload", sa.JSON),
    sa.Column("claimed_until", Stamp),
    sa.Column("next_attempt_at", Stamp),
    sa.Index("ix_effects_state_next", "state", "next_attempt_at"),
)

replies = sa.Table(
    "replies",
    metadata,
    # The reply's Message-ID (or a digest of its bytes when it has none): a
    # message is processed once, whichever way it arrives and however often.
    sa.Column("message_key", sa.String(200), primary_key=True),
    sa.Column("received_at", Stamp, nullable=False),
    sa.Column("sender", sa.String(320)),
    sa.Column("person", sa.String(64)),
    sa.Column("step", sa.String(200)),
    # done (commands ran), refused (nothing changed), ignored (automatic mail).
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(40)),
    sa.Column("event_ids", sa.JSON),
    # The owner's event the reply address was signed over (a valid token), if any.
    sa.Column("owner_event", BigId),
    # Whether an answer mail was recorded (answers are limited per person and hour).
    sa.Column("answered", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_replies_person_received_at", "person", "received_at"),
)


# --- time ------------------------------------------------------------------------


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """Stored times are UTC: SQLite keeps no zone, so the zone must be implied."""
    return value.astimezone(dt.UTC) if value is not None else None


def aware(value: dt.datetime | None) -> dt.datetime | None:
    """A time read back: naive values (SQLite) are UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)
