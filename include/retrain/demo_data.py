"""Deterministic demo data: daily customer activity with a churn label, January to August 2025.

On 2025-06-01 (CHANGE_POINT) the world changes: prices rise (monthly_spend +35%), the plan mix
moves towards "premium", and support tickets weigh more on churn. Windows ending after that date
drift against a model trained before it. Same seed, same bytes: `python -m retrain.demo_data DIR`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

import numpy as np
import pandas as pd

START = dt.date(2025, 1, 1)
END = dt.date(2025, 9, 1)  # exclusive
CHANGE_POINT = dt.date(2025, 6, 1)
ROWS_PER_DAY = 300
SEED = 20250101

PLANS = ("basic", "standard", "premium")
REGIONS = ("north", "south", "east", "west")


def _day(rng: np.random.Generator, day: dt.date, rows: int) -> pd.DataFrame:
    after = day >= CHANGE_POINT
    seconds = np.sort(rng.integers(0, 86_400, size=rows))
    event_time = pd.Timestamp(day, tz="UTC") + pd.to_timedelta(seconds, unit="s")
    plan_p = (0.3, 0.35, 0.35) if after else (0.5, 0.35, 0.15)
    plan = rng.choice(PLANS, size=rows, p=plan_p)
    region = rng.choice(REGIONS, size=rows, p=(0.3, 0.2, 0.25, 0.25))
    tenure = rng.gamma(2.0, 12.0, size=rows).round(1)
    base_spend = np.select([plan == "basic", plan == "standard"], [20.0, 45.0], 90.0)
    spend = (base_spend * (1.35 if after else 1.0) * rng.lognormal(0.0, 0.25, size=rows)).round(2)
    tickets = rng.poisson(1.5 if after else 1.0, size=rows).astype(float)
    sessions = rng.poisson(np.where(plan == "premium", 9.0, 6.0)).astype(float)
    ticket_weight = 0.75 if after else 0.45
    logit = (
        -1.2
        - 0.035 * tenure
        + ticket_weight * tickets
        - 0.18 * sessions
        + 0.012 * (spend - 45.0)
        + np.where(region == "south", 0.4, 0.0)
        + np.where(plan == "basic", 0.3, 0.0)
    )
    churned = (rng.random(rows) < 1.0 / (1.0 + np.exp(-logit))).astype("int64")
    # Real exports have holes: a few missing spends and sessions, never a missing label.
    spend[rng.random(rows) < 0.01] = np.nan
    sessions[rng.random(rows) < 0.01] = np.nan
    return pd.DataFrame(
        {
            "event_time": event_time,
            "customer_id": rng.integers(100_000, 999_999, size=rows),
            "tenure_months": tenure,
            "monthly_spend": spend,
            "support_tickets": tickets,
            "sessions_last_week": sessions,
            "plan": plan,
            "region": region,
            "churned": churned,
        }
    )


def generate(
    start: dt.date = START, end: dt.date = END, rows_per_day: int = ROWS_PER_DAY, seed: int = SEED
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = [start + dt.timedelta(days=i) for i in range((end - start).days)]
    return pd.concat([_day(rng, day, rows_per_day) for day in days], ignore_index=True)


def write_monthly(frame: pd.DataFrame, directory: Path) -> list[Path]:
    """One Parquet file per month, each written to a temporary name and renamed into place."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    months = frame["event_time"].dt.strftime("%Y-%m")
    for month, part in frame.groupby(months, sort=True):
        path = directory / f"events_{month}.parquet"
        tmp = directory / f".{path.name}.tmp"
        part.reset_index(drop=True).to_parquet(tmp, index=False)
        os.replace(tmp, path)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--rows-per-day", type=int, default=ROWS_PER_DAY)
    args = parser.parse_args(argv)
    paths = write_monthly(generate(rows_per_day=args.rows_per_day), args.directory)
    print(f"wrote {len(paths)} files to {args.directory}")


if __name__ == "__main__":
    main()
