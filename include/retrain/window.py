"""The data window of one run: [end - lookback_days, end), its last holdout_days the holdout."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from retrain.spec import DataSpec


def _as_utc_midnight(value: dt.datetime | dt.date) -> dt.datetime:
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
        value = value.date()
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Window:
    start: dt.datetime
    holdout_start: dt.datetime
    end: dt.datetime

    @classmethod
    def ending(cls, end: dt.datetime | dt.date, data: DataSpec) -> Window:
        """Windows end at midnight UTC of the end date, so every run for one date sees the same rows."""
        end = _as_utc_midnight(end)
        return cls(
            start=end - dt.timedelta(days=data.lookback_days),
            holdout_start=end - dt.timedelta(days=data.holdout_days),
            end=end,
        )

    @property
    def end_date(self) -> dt.date:
        return self.end.date()

    @property
    def partition(self) -> str:
        return f"end_date={self.end_date.isoformat()}"

    def to_dict(self) -> dict[str, str]:
        return {
            "start": self.start.isoformat(),
            "holdout_start": self.holdout_start.isoformat(),
            "end": self.end.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Window:
        return cls(**{key: dt.datetime.fromisoformat(data[key]) for key in ("start", "holdout_start", "end")})

    def __str__(self) -> str:
        return f"[{self.start:%Y-%m-%d}, {self.end:%Y-%m-%d}) holdout from {self.holdout_start:%Y-%m-%d}"
