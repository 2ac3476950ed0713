"""Recurring duties: when each occurrence of a repeating step opens and is due.

A step with ``repeat:`` is a *duty*: it is never worked on itself. Each period
(a week, a month, a quarter, a year) gives one *occurrence*, a step of its own
with the id ``STEP@PERIOD`` (``lagesbild@2027-W05``, ``analys@2027-Q1``,
``rapport@2027``): it opens (becomes active, and its owner is prompted) on the
first working day of its period, or on the point's start when that is later, and
is due on the rule's day in the period. Occurrences never wait on each other:
a missed one stays overdue on its own and the next opens on its day.

Pure functions of the rule, the point's start and a calendar: no clock. The
sweep asks :func:`due_to_open` what to open today and :func:`next_opening` when
to look again, so occurrences are created as they come, never all at once.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from enum import StrEnum

from workflow.core.calendar import Calendar
from workflow.core.values import Language

#: Separates a duty's step id from its period in an occurrence's id.
MARK = "@"
#: Longest id of a recurring step, so that ``STEP@2027-W05`` fits a step id (64).
MAX_DUTY_ID = 55


class Every(StrEnum):
    """How often a duty recurs: its period."""

    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
FIRST_BUSINESS_DAY = "first-business-day"
LAST_BUSINESS_DAY = "last-business-day"


@dataclass(frozen=True, slots=True)
class Rule:
    """A resolved recurrence: what :class:`workflow.core.specs.Repeat` says, checked."""

    every: Every
    #: A weekday (week), or first-business-day, last-business-day or a day of the month.
    on: str | int
    #: For a yearly duty: the month it falls in (the period is then that month).
    month: int | None = None
    until: dt.date | None = None
    count: int | None = None


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One occurrence of a duty."""

    period: str
    #: 1 for the first occurrence of the duty.
    index: int
    opens_on: dt.date
    #: As the rule gives it (the day-off policy may move it, as for any due date).
    due: dt.date
    #: No occurrence follows it (its ``count`` or ``until`` is reached).
    last: bool

    def step_id(self, duty: str) -> str:
        return f"{duty}{MARK}{self.period}"


#: A period as occurrence ids write it: 2027-W05, 2027-01, 2027-Q1, 2027.
PERIOD = re.compile(r"^[0-9]{4}(-W(0[1-9]|[1-4][0-9]|5[0-3])|-Q[1-4]|-(0[1-9]|1[0-2]))?$")


def split(step_id: str) -> tuple[str, str | None]:
    """(the duty's step id, the period) of an occurrence id; (step_id, None) for others,
    and for an id whose period is not one (``x@../``)."""
    duty, mark, period = step_id.partition(MARK)
    return (duty, period) if mark and PERIOD.match(period) else (step_id, None)


# --- periods -----------------------------------------------------------------------


def _add_months(day: dt.date, months: int) -> dt.date:
    total = day.year * 12 + day.month - 1 + months
    return dt.date(total // 12, total % 12 + 1, 1)


def _month_end(first: dt.date) -> dt.date:
    return _add_months(first, 1) - dt.timedelta(days=1)


def _period_of(rule: Rule, day: dt.date) -> dt.date:
    """The first day of the period that holds ``day``."""
    match rule.every:
        case Every.WEEK:
            return day - dt.timedelta(days=day.weekday())
        case Every.MONTH:
            return day.replace(day=1)
        case Every.QUARTER:
            return dt.date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    return dt.date(day.year, 1, 1)


def _next_period(rule: Rule, first: dt.date) -> dt.date:
    match rule.every:
        case Every.WEEK:
            return first + dt.timedelta(days=7)
        case Every.MONTH:
            return _add_months(first, 1)
        case Every.QUARTER:
            return _add_months(first, 3)
    return dt.date(first.year + 1, 1, 1)


def _window(rule: Rule, first: dt.date) -> tuple[dt.date, dt.date]:
    """The days of the period an occurrence falls in (a yearly duty's month, if it names one)."""
    match rule.every:
        case Every.WEEK:
            return first, first + dt.timedelta(days=6)
        case Every.MONTH:
            return first, _month_end(first)
        case Every.QUARTER:
            return first, _month_end(_add_months(first, 2))
    if rule.month is not None:
        start = dt.date(first.year, rule.month, 1)
        return start, _month_end(start)
    return first, dt.date(first.year, 12, 31)


def label(rule: Rule, first: dt.date) -> str:
    """The period's name in ids: 2027-W05, 2027-01, 2027-Q1, 2027."""
    match rule.every:
        case Every.WEEK:
            year, week, _ = first.isocalendar()
            return f"{year}-W{week:02d}"
        case Every.MONTH:
            return f"{first:%Y-%m}"
        case Every.QUARTER:
            return f"{first.year}-Q{(first.month - 1) // 3 + 1}"
    return f"{first.year}"


def _due_in(rule: Rule, first: dt.date, calendar: Calendar) -> dt.date:
    start, end = _window(rule, first)
    if rule.every is Every.WEEK:
        assert isinstance(rule.on, str)
        return first + dt.timedelta(days=WEEKDAYS.index(rule.on))
    if rule.on == LAST_BUSINESS_DAY:
        day = end
        while not calendar.is_business_day(day) and day > start:
            day -= dt.timedelta(days=1)
        return day
    if rule.on == FIRST_BUSINESS_DAY:
        day = start
        while not calendar.is_business_day(day) and day < end:
            day += dt.timedelta(days=1)
        return day
    assert isinstance(rule.on, int)
    return min(start.replace(day=1) + dt.timedelta(days=rule.on - 1), _month_end(start))


def day_in_year(rule: Rule, year: int, calendar: Calendar) -> dt.date:
    """The day a yearly rule gives in ``year`` (a reporting occasion's day)."""
    assert rule.every is Every.YEAR
    return _due_in(rule, dt.date(year, 1, 1), calendar)


def _raw(rule: Rule, start: dt.date, calendar: Calendar) -> Iterator[tuple[str, dt.date, dt.date]]:
    """(period, opens on, due) of every occurrence from the period holding ``start``, without
    end: the first period counts only if its due day is not before ``start``. An occurrence
    opens on the first working day of its period, and never after its due day as the
    day-off policy moves it (due on a Sunday the 1st: it opens, and is due, the Friday
    before)."""
    first = _period_of(rule, start)
    while True:
        due = _due_in(rule, first, calendar)
        moved = calendar.adjust_due(due)  # the due day after the day-off policy
        if moved >= start:
            window_start, _ = _window(rule, first)
            opens = calendar.start_on(max(window_start, start))
            yield label(rule, first), min(opens, moved), due
        first = _next_period(rule, first)


def occurrences(rule: Rule, start: dt.date, calendar: Calendar) -> Iterator[Occurrence]:
    """Every occurrence of the duty from ``start``, in order; endless without count or until."""
    raw = _raw(rule, start, calendar)
    ahead = next(raw)
    index = 1
    while True:
        period, opens, due = ahead
        if rule.until is not None and due > rule.until:
            return
        ahead = next(raw)
        last = (rule.count is not None and index >= rule.count) or (
            rule.until is not None and ahead[2] > rule.until
        )
        yield Occurrence(period, index, opens, due, last)
        if last:
            return
        index += 1


def due_to_open(
    rule: Rule, start: dt.date, opened: Collection[str], today: dt.date, calendar: Calendar
) -> list[Occurrence]:
    """The occurrences that have opened by ``today`` and are not in ``opened`` (by period)."""
    found = []
    for occurrence in occurrences(rule, start, calendar):
        if occurrence.opens_on > today:
            break
        if occurrence.period not in opened:
            found.append(occurrence)
    return found


def next_opening(
    rule: Rule, start: dt.date, opened: Collection[str], calendar: Calendar
) -> dt.date | None:
    """The day the first occurrence not in ``opened`` opens; None when none is left."""
    for occurrence in occurrences(rule, start, calendar):
        if occurrence.period not in opened:
            return occurrence.opens_on
    return None


# --- words -------------------------------------------------------------------------

_MONTHS = {
    Language.SV: (
        "januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti", "september",
        "oktober", "november", "december",
    ),
    Language.EN: (
        "January", "February", "March", "April", "May", "June", "July", "August", "September",
        "October", "November", "December",
    ),
}  # fmt: skip


def period_words(period: str, language: Language | str) -> str:
    """A period as people read it: vecka 5 2027 / week 5 2027, januari 2027, kvartal 1 2027."""
    lang = Language(language)
    year, _, rest = period.partition("-")
    if not rest:
        return year
    if rest.startswith("W"):
        return f"{'vecka' if lang is Language.SV else 'week'} {int(rest[1:])} {year}"
    if rest.startswith("Q"):
        return f"kvartal {rest[1:]} {year}" if lang is Language.SV else f"Q{rest[1:]} {year}"
    return f"{_MONTHS[lang][int(rest) - 1]} {year}"
