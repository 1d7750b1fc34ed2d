"""Times and durations as Personalizer wrote them: ISO 8601, UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["duration", "iso", "seconds"]


def iso(moment: float) -> str:
    """Return a Unix time as ISO 8601 in UTC, e.g. 2026-11-25T12:00:00Z."""
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


def seconds(moment: datetime) -> float:
    """Return a datetime as Unix time; a time without a zone is taken as UTC."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.timestamp()


def duration(total_seconds: float) -> str:
    """Return a duration as ISO 8601, e.g. PT10M or P1DT2H, exact to the microsecond.

    >>> duration(600), duration(93600), duration(0), duration(1.5), duration(1.234567)
    ('PT10M', 'P1DT2H', 'PT0S', 'PT1.5S', 'PT1.234567S')
    """
    delta = timedelta(seconds=total_seconds)
    hours, rest = divmod(delta.seconds, 3600)
    minutes, whole = divmod(rest, 60)
    # every digit a timedelta holds, so a duration read back is the one written
    fraction = f"{whole}.{delta.microseconds:06d}".rstrip("0").rstrip(".")
    clock = (
        (f"{hours}H" if hours else "")
        + (f"{minutes}M" if minutes else "")
        + (f"{fraction}S" if whole or delta.microseconds else "")
    )
    text = "P" + (f"{delta.days}D" if delta.days else "")
    if clock or not delta.days:
        text += "T" + (clock or "0S")
    return text
