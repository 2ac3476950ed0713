"""Business days in a Swedish municipality: holidays, eves, closures, due policies, arithmetic."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from workflow.core.calendar import MAX_BUSINESS_DAYS, Calendar, DuePolicy
from workflow.core.specs import DayKind, Duration, Language

D = dt.date
JULAFTON_2024 = D(2024, 12, 24)
MIDSOMMARAFTON_2024 = D(2024, 6, 21)
NYARSAFTON_2024 = D(2024, 12, 31)
KLAMDAG_2024 = D(2024, 5, 10)  # the Friday after Kristi himmelsfärd

CAL = Calendar()
WITH_CLOSURE = Calendar(extra_days_off=[KLAMDAG_2024, D(2025, 1, 2)])

dates = st.dates(min_value=D(2000, 1, 1), max_value=D(2060, 12, 31))
counts = st.integers(min_value=-40, max_value=40)


# --- days off --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "sv", "en"),
    [
        (JULAFTON_2024, "Julafton", "Christmas Eve"),
        (MIDSOMMARAFTON_2024, "Midsommarafton", "Midsummer Eve"),
        (NYARSAFTON_2024, "Nyårsafton", "New Year's Eve"),
        (D(2024, 6, 6), "Nationaldagen", "National Day"),
        (D(2024, 3, 29), "Långfredagen", "Good Friday"),
        (D(2024, 5, 9), "Kristi himmelsfärdsdag", "Ascension Day"),
    ],
)
def test_weekday_days_off_of_2024(day, sv, en):
    """Public holidays and the three de facto eves are days off, named in Swedish and English."""
    assert day.weekday() < 5
    assert not CAL.is_business_day(day)
    assert CAL.day_off_name(day) == sv
    assert CAL.day_off_name(day, Language.EN) == en


def test_julafton_2024_is_a_tuesday_off():
    """Julafton 2024 is a Tuesday and not a working day; the Monday before is."""
    assert JULAFTON_2024.strftime("%A") == "Tuesday"
    assert not CAL.is_business_day(JULAFTON_2024)
    assert CAL.is_business_day(D(2024, 12, 23))


def test_midsommarafton_2024_is_friday_21_june():
    """Midsommarafton 2024 falls on Friday 21 June and is a day off; Thursday 20 is not."""
    assert not CAL.is_business_day(MIDSOMMARAFTON_2024)
    assert CAL.is_business_day(D(2024, 6, 20))
    assert CAL.add_business_days(D(2024, 6, 20), 1) == D(2024, 6, 24)


@pytest.mark.parametrize("year", range(2020, 2031))
def test_the_eves_are_off_every_year(year):
    """Julafton and nyårsafton are days off every year, midsommarafton is a Friday off."""
    assert CAL.day_off_name(D(year, 12, 24)) == "Julafton"
    assert CAL.day_off_name(D(year, 12, 31)) == "Nyårsafton"
    (eve,) = [day for day, name in CAL.days_off(year) if name == "Midsommarafton"]
    assert eve.weekday() == 4
    assert D(year, 6, 19) <= eve <= D(year, 6, 25)


def test_ordinary_days():
    """A plain weekday is a business day with no day-off name; weekends are named."""
    assert CAL.is_business_day(D(2024, 6, 18))
    assert CAL.day_off_name(D(2024, 6, 18)) is None
    assert CAL.day_off_name(D(2024, 6, 15)) == "Lördag"
    assert CAL.day_off_name(D(2024, 6, 16)) == "Söndag"
    assert CAL.day_off_name(D(2024, 6, 16), Language.EN) == "Sunday"
    assert not CAL.is_business_day(D(2024, 6, 15))


def test_sundays_are_not_listed_as_holidays():
    """days_off lists named days only: no plain Sundays, only Påskdagen and Pingstdagen."""
    days = CAL.days_off(2024)
    assert len(days) == 16
    sundays = [name for day, name in days if day.weekday() == 6]
    assert sundays == ["Påskdagen", "Pingstdagen"]
    assert [day for day, _ in days] == sorted(day for day, _ in days)


def test_sundays_are_not_double_counted_in_a_year():
    """2024 has 366 days, 104 weekend days and 11 weekday days off: 251 working days."""
    assert CAL.business_days_between(D(2023, 12, 31), D(2024, 12, 31)) == 251


def test_holiday_on_a_sunday_costs_no_working_day():
    """Nationaldagen 2027 falls on a Sunday: that week still has five working days."""
    assert D(2027, 6, 6).weekday() == 6
    assert CAL.day_off_name(D(2027, 6, 6)) == "Nationaldagen"
    assert CAL.business_days_between(D(2027, 6, 4), D(2027, 6, 11)) == 5


def test_easter_weekend():
    """From Thursday before Easter 2024 to the Tuesday after there is one working day."""
    assert CAL.business_days_between(D(2024, 3, 28), D(2024, 4, 2)) == 1
    assert CAL.add_business_days(D(2024, 3, 28), 1) == D(2024, 4, 2)


# --- extra closure days ------------------------------------------------------------


def test_extra_closure_day_is_a_day_off():
    """A configured closure day is a day off with its own name; the default calendar works."""
    assert CAL.is_business_day(KLAMDAG_2024)
    assert not WITH_CLOSURE.is_business_day(KLAMDAG_2024)
    assert WITH_CLOSURE.day_off_name(KLAMDAG_2024) == "Extra stängningsdag"
    assert WITH_CLOSURE.day_off_name(KLAMDAG_2024, Language.EN) == "Extra closure day"


def test_extra_closure_day_is_listed_in_its_year_only():
    """days_off includes the year's closure days in date order, and not other years'."""
    days = dict(WITH_CLOSURE.days_off(2024))
    assert days[KLAMDAG_2024] == "Extra stängningsdag"
    assert D(2025, 1, 2) not in days
    assert len(days) == len(CAL.days_off(2024)) + 1
    listed = [day for day, _ in WITH_CLOSURE.days_off(2024)]
    assert listed == sorted(listed)


def test_extra_closure_on_a_holiday_keeps_the_holiday_name():
    """A closure that coincides with a holiday is listed once, under the holiday's name."""
    cal = Calendar(extra_days_off=[JULAFTON_2024])
    assert cal.day_off_name(JULAFTON_2024) == "Julafton"
    assert len(cal.days_off(2024)) == len(CAL.days_off(2024))


def test_arithmetic_skips_extra_closure_days():
    """Business-day arithmetic skips closure days like holidays."""
    wednesday = D(2024, 5, 8)
    assert CAL.add_business_days(wednesday, 1) == KLAMDAG_2024
    assert WITH_CLOSURE.add_business_days(wednesday, 1) == D(2024, 5, 13)
    assert WITH_CLOSURE.business_days_between(wednesday, D(2024, 5, 13)) == 1
    assert WITH_CLOSURE.adjust_due(KLAMDAG_2024) == wednesday


# --- due policy ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "policy", "expected"),
    [
        (JULAFTON_2024, DuePolicy.PREVIOUS, D(2024, 12, 23)),
        (JULAFTON_2024, DuePolicy.NEXT, D(2024, 12, 27)),
        (JULAFTON_2024, DuePolicy.KEEP, JULAFTON_2024),
        (MIDSOMMARAFTON_2024, DuePolicy.PREVIOUS, D(2024, 6, 20)),
        (MIDSOMMARAFTON_2024, DuePolicy.NEXT, D(2024, 6, 24)),
        (NYARSAFTON_2024, DuePolicy.PREVIOUS, D(2024, 12, 30)),
        (NYARSAFTON_2024, DuePolicy.NEXT, D(2025, 1, 2)),
        (D(2024, 6, 15), DuePolicy.PREVIOUS, D(2024, 6, 14)),
        (D(2024, 6, 15), DuePolicy.NEXT, D(2024, 6, 17)),
        (D(2024, 6, 15), DuePolicy.KEEP, D(2024, 6, 15)),
    ],
)
def test_adjust_due(day, policy, expected):
    """A due date on a day off moves to the previous or next working day, or stays (keep)."""
    assert Calendar(due_policy=policy).adjust_due(day) == expected


def test_default_due_policy_is_previous():
    """Without configuration a due date on a day off moves earlier, never later."""
    assert CAL.due_policy is DuePolicy.PREVIOUS
    assert CAL.adjust_due(JULAFTON_2024) == D(2024, 12, 23)


@settings(max_examples=200, deadline=None)
@given(day=dates)
def test_adjust_due_properties(day):
    """Working days never move; otherwise previous < day < next, both working days."""
    previous = Calendar(due_policy=DuePolicy.PREVIOUS).adjust_due(day)
    following = Calendar(due_policy=DuePolicy.NEXT).adjust_due(day)
    assert Calendar(due_policy=DuePolicy.KEEP).adjust_due(day) == day
    if CAL.is_business_day(day):
        assert previous == day == following
    else:
        assert previous < day < following
        assert CAL.is_business_day(previous)
        assert CAL.is_business_day(following)
        assert CAL.business_days_between(previous, following) == 1


# --- arithmetic: examples ------------------------------------------------------------


def test_add_business_days_examples():
    """Friday + 1 is Monday, + 0 is the same day, and negative counts go backwards."""
    friday = D(2024, 6, 14)
    assert CAL.add_business_days(friday, 0) == friday
    assert CAL.add_business_days(friday, 1) == D(2024, 6, 17)
    assert CAL.add_business_days(D(2024, 6, 17), -1) == friday
    assert CAL.add_business_days(D(2024, 6, 15), 0) == D(2024, 6, 15)


def test_add_business_days_is_bounded():
    """MAX_BUSINESS_DAYS is accepted; counts beyond it are refused instead of walking for ever."""
    assert CAL.is_business_day(CAL.add_business_days(D(2024, 1, 1), MAX_BUSINESS_DAYS))
    with pytest.raises(ValueError, match="out of range"):
        CAL.add_business_days(D(2024, 1, 1), MAX_BUSINESS_DAYS + 1)
    with pytest.raises(ValueError, match="out of range"):
        CAL.add_business_days(D(2024, 1, 1), -MAX_BUSINESS_DAYS - 1)


def test_shift_by_duration():
    """shift counts business days for ``bd`` and calendar days for ``d``."""
    monday = D(2024, 6, 17)
    assert CAL.shift(monday, Duration(5, DayKind.BUSINESS)) == D(2024, 6, 25)
    assert CAL.shift(monday, Duration(5, DayKind.CALENDAR)) == D(2024, 6, 22)
    assert CAL.shift(monday, Duration(-1, DayKind.BUSINESS)) == D(2024, 6, 14)
    assert CAL.shift(monday, Duration.parse("-3d")) == D(2024, 6, 14)


def test_business_days_between_examples():
    """Counts working days in (start, end]: zero for the same day, negative backwards."""
    monday, friday = D(2024, 6, 17), D(2024, 6, 14)
    assert CAL.business_days_between(monday, monday) == 0
    assert CAL.business_days_between(friday, monday) == 1
    assert CAL.business_days_between(monday, friday) == -1
    assert CAL.business_days_between(D(2024, 6, 14), D(2024, 6, 28)) == 9  # midsommarafton


def test_business_days_between_inverts_add_from_a_saturday():
    """Going back one working day from a Saturday reaches Friday, which is -1 working day away."""
    saturday = D(2024, 6, 8)
    friday = CAL.add_business_days(saturday, -1)
    assert friday == D(2024, 6, 7)
    assert CAL.business_days_between(saturday, friday) == -1


# --- arithmetic: properties ----------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(day=dates, count=counts)
def test_add_lands_on_a_business_day(day, count):
    """Adding a non-zero count always lands on a working day, on the side the sign says."""
    result = CAL.add_business_days(day, count)
    if count == 0:
        assert result == day
    else:
        assert CAL.is_business_day(result)
        assert (result > day) == (count > 0)


@settings(max_examples=200, deadline=None)
@given(day=dates, count=counts)
def test_between_inverts_add_from_a_business_day(day, count):
    """From a working day, business_days_between(d, add_business_days(d, n)) == n."""
    assume(CAL.is_business_day(day))
    assert CAL.business_days_between(day, CAL.add_business_days(day, count)) == count


@settings(max_examples=200, deadline=None)
@given(day=dates, count=counts)
def test_between_inverts_add_from_any_day(day, count):
    """From any day, weekends and holidays included, between(d, add(d, n)) == n."""
    assert CAL.business_days_between(day, CAL.add_business_days(day, count)) == count


@settings(max_examples=200, deadline=None)
@given(day=dates, first=counts, second=counts)
def test_add_is_monotonic_in_the_count(day, first, second):
    """More working days never lead to an earlier date."""
    low, high = sorted((first, second))
    assert CAL.add_business_days(day, low) <= CAL.add_business_days(day, high)


@settings(max_examples=200, deadline=None)
@given(first=dates, second=dates, count=counts)
def test_add_is_monotonic_in_the_day(first, second, count):
    """A later start never leads to an earlier result."""
    early, late = sorted((first, second))
    assert CAL.add_business_days(early, count) <= CAL.add_business_days(late, count)


@settings(max_examples=200, deadline=None)
@given(day=dates, count=counts)
def test_add_then_subtract_returns(day, count):
    """Adding n then -n returns to a working day; from a day off, to the nearest one back."""
    there_and_back = CAL.add_business_days(CAL.add_business_days(day, count), -count)
    if count == 0 or CAL.is_business_day(day):
        assert there_and_back == day
    elif count > 0:
        assert there_and_back == CAL.add_business_days(day, -1)
    else:
        assert there_and_back == CAL.add_business_days(day, 1)


@settings(max_examples=200, deadline=None)
@given(day=dates, first=counts, second=counts)
def test_add_composes_on_business_days(day, first, second):
    """From a working day, adding m then n equals adding m + n when the signs agree."""
    assume(CAL.is_business_day(day))
    assume((first >= 0) == (second >= 0))
    assert CAL.add_business_days(CAL.add_business_days(day, first), second) == (
        CAL.add_business_days(day, first + second)
    )


@settings(max_examples=200, deadline=None)
@given(
    a=dates,
    first=st.integers(min_value=0, max_value=400),
    second=st.integers(min_value=0, max_value=400),
)
def test_between_is_additive(a, first, second):
    """Working days from a to c are those from a to b plus those from b to c (a <= b <= c)."""
    b = a + dt.timedelta(days=first)
    c = b + dt.timedelta(days=second)
    between = CAL.business_days_between
    assert between(a, c) == between(a, b) + between(b, c)
    assert between(a, c) >= 0


@settings(max_examples=100, deadline=None)
@given(day=dates, span=st.integers(min_value=0, max_value=60))
def test_between_counts_business_days(day, span):
    """business_days_between(d, d + k) counts the working days among the k days after d."""
    end = day + dt.timedelta(days=span)
    expected = sum(CAL.is_business_day(day + dt.timedelta(days=i)) for i in range(1, span + 1))
    assert CAL.business_days_between(day, end) == expected
