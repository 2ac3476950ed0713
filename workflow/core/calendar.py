"""Business days: Swedish public holidays, the de facto days off, and extra closures.

Two traps of the ``holidays`` package are handled here: ``Sweden()`` counts
every Sunday as a holiday unless ``include_sundays=False`` (we treat weekends
ourselves), and midsommarafton, julafton and nyårsafton are only in its
``DE_FACTO`` category from release 0.88 on (pinned in pyproject.toml).

Pure: no clock reads; the holiday tables are computed, not fetched.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from enum import StrEnum
from functools import lru_cache

from workflow.core.values import DayKind, Duration, Language

_HOLIDAY_LANGUAGE = {Language.SV: "sv", Language.EN: "en_US"}
#: Business-day arithmetic refuses to walk further than this (about 40 years).
MAX_BUSINESS_DAYS = 10_000


class DuePolicy(StrEnum):
    """What to do with a due date that lands on a day off."""

    PREVIOUS = "previous"  # move to the working day before (the default)
    NEXT = "next"  # move to the working day after
    KEEP = "keep"  # leave it on the day off


#: Tables given by :func:`seed_days_off` (an earlier process's), by (year, language).
_SEEDED: dict[tuple[int, str], dict[dt.date, str]] = {}
#: Tables this process computed with the ``holidays`` package, by (year, language).
_COMPUTED: dict[tuple[int, str], dict[dt.date, str]] = {}


@lru_cache(maxsize=256)
def _swedish_days_off(year: int, language: str) -> dict[dt.date, str]:
    seeded = _SEEDED.get((year, language))
    if seeded is not None:
        return dict(seeded)
    # Imported here: loading the package's countries costs a process about 0.2 s, which a
    # command whose tables were seeded does not pay.
    import holidays
    from holidays.constants import DE_FACTO, PUBLIC

    table = holidays.country_holidays(
        "SE",
        years=year,
        categories=(PUBLIC, DE_FACTO),
        include_sundays=False,
        language=language,
    )
    _COMPUTED[(year, language)] = dict(table.items())
    return dict(table.items())


def seed_days_off(tables: Mapping[tuple[int, str], Mapping[dt.date, str]]) -> None:
    """Use these tables (computed by an earlier process, kept by the CLI's cache) instead
    of computing them again; a table already used in this process stays as it was."""
    for key, table in tables.items():
        _SEEDED.setdefault(key, dict(table))


def computed_days_off() -> dict[tuple[int, str], dict[dt.date, str]]:
    """The tables this process computed (for a cache to keep)."""
    return {key: dict(table) for key, table in _COMPUTED.items()}


class Calendar:
    """Working days in a Swedish municipality."""

    def __init__(
        self,
        *,
        extra_days_off: Iterable[dt.date] = (),
        due_policy: DuePolicy = DuePolicy.PREVIOUS,
        timezone: dt.tzinfo | None = None,
    ) -> None:
        self.extra_days_off = frozenset(extra_days_off)
        self.due_policy = due_policy
        #: The municipality's zone: which day a moment falls on. None: the moment's own.
        self.timezone = timezone

    def day_of(self, moment: dt.datetime) -> dt.date:
        """The local day of ``moment`` (a time stored in UTC is the same local day)."""
        return (moment.astimezone(self.timezone) if self.timezone else moment).date()

    def day_off_name(self, day: dt.date, language: Language = Language.SV) -> str | None:
        """Why ``day`` is not a working day, or None when it is one."""
        name = _swedish_days_off(day.year, _HOLIDAY_LANGUAGE[language]).get(day)
        if name:
            return name
        if day in self.extra_days_off:
            return "Extra stängningsdag" if language is Language.SV else "Extra closure day"
        if day.weekday() >= 5:
            return (("Lördag", "Söndag") if language is Language.SV else ("Saturday", "Sunday"))[
                day.weekday() - 5
            ]
        return None

    def is_business_day(self, day: dt.date) -> bool:
        if day.weekday() >= 5 or day in self.extra_days_off:
            return False
        return day not in _swedish_days_off(day.year, "sv")

    def days_off(self, year: int, language: Language = Language.SV) -> list[tuple[dt.date, str]]:
        """The year's weekday days off (holidays, eves, closures), in date order."""
        table = dict(_swedish_days_off(year, _HOLIDAY_LANGUAGE[language]))
        for day in self.extra_days_off:
            if day.year == year and day not in table:
                table[day] = self.day_off_name(day, language) or ""
        return sorted(table.items())

    def add_business_days(self, day: dt.date, count: int) -> dt.date:
        """Move ``count`` working days from ``day`` (backwards when negative).

        ``day`` itself is not counted, so adding 1 to a Friday gives Monday and
        adding 0 returns ``day`` unchanged.
        """
        if abs(count) > MAX_BUSINESS_DAYS:
            raise ValueError(f"{count} business days is out of range")
        step = dt.timedelta(days=1 if count > 0 else -1)
        remaining = abs(count)
        while remaining:
            day += step
            if self.is_business_day(day):
                remaining -= 1
        return day

    def shift(self, day: dt.date, duration: Duration) -> dt.date:
        """``day`` moved by a duration in business or calendar days."""
        if duration.kind is DayKind.BUSINESS:
            return self.add_business_days(day, duration.days)
        return day + dt.timedelta(days=duration.days)

    def business_days_between(self, start: dt.date, end: dt.date) -> int:
        """The working days one must move from ``start`` to reach ``end``.

        Forwards it counts working days in ``(start, end]``, backwards those in
        ``[end, start)`` as a negative number, so that
        ``business_days_between(d, add_business_days(d, n)) == n`` for every ``n``.
        """
        if end < start:
            day, count = end, 0
            while day < start:
                count += self.is_business_day(day)
                day += dt.timedelta(days=1)
            return -count
        count, day = 0, start
        while day < end:
            day += dt.timedelta(days=1)
            count += self.is_business_day(day)
        return count

    def adjust_due(self, day: dt.date) -> dt.date:
        """Apply the due policy to a due date that may land on a day off."""
        if self.due_policy is DuePolicy.KEEP or self.is_business_day(day):
            return day
        return self.add_business_days(day, -1 if self.due_policy is DuePolicy.PREVIOUS else 1)

    def start_on(self, day: dt.date) -> dt.date:
        """The day a point planned to start on ``day`` starts: that day, or the first working
        day after it when it is a day off (never earlier than the council decided).

        With the ``keep`` policy a planned start stays on its day, as due dates do.
        """
        if self.due_policy is DuePolicy.KEEP or self.is_business_day(day):
            return day
        return self.add_business_days(day, 1)
