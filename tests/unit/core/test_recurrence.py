"""Recurring duties: each occurrence's period, opening day and due day, its end, its words."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow.core.calendar import Calendar
from workflow.core.recurrence import (
    Every,
    Rule,
    due_to_open,
    next_opening,
    occurrences,
    period_words,
    split,
)
from workflow.core.specs import Language

D = dt.date
CAL = Calendar()


def first(rule: Rule, start: dt.date, n: int) -> list[tuple[str, dt.date, dt.date, bool]]:
    return [
        (o.period, o.opens_on, o.due, o.last)
        for o in itertools.islice(occurrences(rule, start, CAL), n)
    ]


def test_a_weekly_duty_opens_on_monday_and_is_due_on_its_weekday() -> None:
    """Weekly on Thursday from Wednesday 2027-01-06 (Trettondedag jul, a holiday): the first
    week opens on the start, the next on Monday, each due on its Thursday."""
    rule = Rule(Every.WEEK, on="thursday")
    assert first(rule, D(2027, 1, 6), 3) == [
        ("2027-W01", D(2027, 1, 7), D(2027, 1, 7), False),  # the 6th is a holiday
        ("2027-W02", D(2027, 1, 11), D(2027, 1, 14), False),
        ("2027-W03", D(2027, 1, 18), D(2027, 1, 21), False),
    ]


def test_a_week_whose_day_has_passed_at_the_start_is_not_an_occurrence() -> None:
    """Started on a Friday, a duty due on Mondays begins with the next week."""
    assert first(Rule(Every.WEEK, on="monday"), D(2027, 1, 8), 1) == [
        ("2027-W02", D(2027, 1, 11), D(2027, 1, 11), False)
    ]


def test_monthly_quarterly_and_yearly_periods() -> None:
    """Last business day of the month, the quarter's first business day, a yearly duty in
    a named month, and a day of the month that some months do not have."""
    monthly = Rule(Every.MONTH, on="last-business-day")
    assert [o[2] for o in first(monthly, D(2027, 1, 1), 3)] == [
        D(2027, 1, 29), D(2027, 2, 26), D(2027, 3, 31)
    ]  # fmt: skip
    quarterly = Rule(Every.QUARTER, on="first-business-day")
    assert first(quarterly, D(2027, 1, 1), 2) == [
        ("2027-Q1", D(2027, 1, 4), D(2027, 1, 4), False),  # 1 Jan a holiday, then a weekend
        ("2027-Q2", D(2027, 4, 1), D(2027, 4, 1), False),
    ]
    yearly = Rule(Every.YEAR, on=15, month=11)
    assert first(yearly, D(2027, 3, 1), 2) == [
        ("2027", D(2027, 11, 1), D(2027, 11, 15), False),
        ("2028", D(2028, 11, 1), D(2028, 11, 15), False),
    ]
    on_31 = Rule(Every.MONTH, on=31)
    assert [o[2] for o in first(on_31, D(2027, 2, 1), 2)] == [D(2027, 2, 28), D(2027, 3, 31)]


def test_count_and_until_end_a_duty_and_mark_the_last_occurrence() -> None:
    by_count = list(occurrences(Rule(Every.WEEK, on="friday", count=3), D(2027, 1, 4), CAL))
    assert [(o.index, o.last) for o in by_count] == [(1, False), (2, False), (3, True)]
    until = Rule(Every.MONTH, on="last-business-day", until=D(2027, 3, 31))
    assert [(o.period, o.last) for o in occurrences(until, D(2027, 1, 1), CAL)] == [
        ("2027-01", False), ("2027-02", False), ("2027-03", True)
    ]  # fmt: skip


def test_due_to_open_takes_what_has_opened_and_is_not_open_yet() -> None:
    """Three weeks unswept: the three opened weeks are due to open, less those already open."""
    rule = Rule(Every.WEEK, on="friday")
    start = D(2027, 1, 4)
    opened = due_to_open(rule, start, set(), D(2027, 1, 20), CAL)
    assert [o.period for o in opened] == ["2027-W01", "2027-W02", "2027-W03"]
    assert [o.period for o in due_to_open(rule, start, {"2027-W01", "2027-W03"},
                                          D(2027, 1, 20), CAL)] == ["2027-W02"]  # fmt: skip
    assert next_opening(rule, start, {"2027-W01", "2027-W02", "2027-W03"}, CAL) == D(2027, 1, 25)
    ended = Rule(Every.WEEK, on="friday", count=1)
    assert next_opening(ended, start, {"2027-W01"}, CAL) is None


@settings(max_examples=200, deadline=None)
@given(
    every=st.sampled_from(list(Every)),
    start=st.dates(min_value=D(2020, 1, 1), max_value=D(2040, 12, 31)),
    on=st.sampled_from(["first-business-day", "last-business-day", 1, 15, 31]),
    weekday=st.sampled_from(["monday", "wednesday", "friday", "sunday"]),
)
def test_occurrences_are_ordered_distinct_and_open_by_their_due_day(
    every: Every, start: dt.date, on: str | int, weekday: str
) -> None:
    rule = Rule(every, on=weekday if every is Every.WEEK else on)
    found = list(itertools.islice(occurrences(rule, start, CAL), 12))
    assert len({o.period for o in found}) == len(found) == 12
    assert all(start <= o.opens_on <= o.due for o in found)
    assert all(a.due < b.due for a, b in itertools.pairwise(found))
    assert [o.index for o in found] == list(range(1, 13))


@pytest.mark.parametrize(
    ("period", "sv", "en"),
    [
        ("2027-W05", "vecka 5 2027", "week 5 2027"),
        ("2027-01", "januari 2027", "January 2027"),
        ("2027-Q3", "kvartal 3 2027", "Q3 2027"),
        ("2027", "2027", "2027"),
    ],
)
def test_periods_in_words(period: str, sv: str, en: str) -> None:
    assert period_words(period, Language.SV) == sv
    assert period_words(period, Language.EN) == en


def test_an_occurrence_id_names_its_duty_and_period() -> None:
    assert split("lagesbild@2027-W05") == ("lagesbild", "2027-W05")
    assert split("analyse") == ("analyse", None)
    for odd in ("lagesbild@", "lagesbild@2027-W54", "lagesbild@2027-13", "lagesbild@../x"):
        assert split(odd) == (odd, None)


def test_an_occurrence_due_on_a_day_off_opens_by_its_moved_due_day() -> None:
    """Due on Sunday 1 June 2025 (moved to Friday 30 May by the default policy): it opens
    that Friday, never after its due day; weekly on Monday over Easter Monday likewise."""
    monthly = Rule(Every.MONTH, on=1)
    (june,) = [o for o in itertools.islice(occurrences(monthly, D(2025, 1, 1), CAL), 6)
               if o.period == "2025-06"]  # fmt: skip
    assert (june.opens_on, CAL.adjust_due(june.due)) == (D(2025, 5, 30), D(2025, 5, 30))
    weekly = Rule(Every.WEEK, on="monday")
    (easter,) = [o for o in itertools.islice(occurrences(weekly, D(2025, 4, 1), CAL), 4)
                 if o.period == "2025-W17"]  # fmt: skip
    assert easter.opens_on <= CAL.adjust_due(easter.due) == D(2025, 4, 17)
    found = list(itertools.islice(occurrences(monthly, D(2025, 1, 1), CAL), 24))
    assert all(o.opens_on <= CAL.adjust_due(o.due) for o in found)
    assert all(CAL.is_business_day(o.opens_on) for o in found)
