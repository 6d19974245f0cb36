"""Loose date reading for note metadata: YAML dates, ISO strings and day-first ``DD/MM/YYYY`` strings."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone

_TIME = r"(?:[ T,]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?"
_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})" + _TIME)
_DAY_FIRST = re.compile(r"(\d{1,2})[/.](\d{1,2})[/.](\d{4})" + _TIME)


def to_datetime(value: object) -> datetime | None:
    """A naive datetime (UTC when the value had a zone) from a date, datetime or date-like string; else None.

    Strings may be ISO (``2022-01-31``, ``2022-01-31T12:00:00Z``) or day-first (``31/01/2022 12:34:56``,
    as written by mathwiki-style templates); ``MM/DD/YYYY`` is read only when the day-first reading is
    impossible (second field above 12). Text after the date is ignored.
    """
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        return to_datetime(datetime.fromisoformat(text))
    except ValueError:
        pass
    if match := _ISO.match(text):
        year, month, day, *clock = match.groups()
    elif match := _DAY_FIRST.match(text):
        day, month, year, *clock = match.groups()
        if int(month) > 12:
            day, month = month, day
    else:
        return None
    hour, minute, second = (int(part or 0) for part in clock)
    try:
        return datetime(int(year), int(month), int(day), hour, minute, second)
    except ValueError:
        return None


def epoch_days(value: object) -> float | None:
    """Days since the epoch of what :func:`to_datetime` reads from ``value`` (a time without a zone as UTC);
    None when it reads no date."""
    moment = to_datetime(value)
    return None if moment is None else moment.replace(tzinfo=timezone.utc).timestamp() / 86400.0
