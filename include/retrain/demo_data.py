"""Deterministic demo data: daily customer activity with a churn label, January to August 2025.

On 2025-06-01 (CHANGE_POINT) the world changes: prices rise (monthly_spend +35%), the plan mix
moves towards "premium", and support tickets weigh more on churn. Windows ending after that date
drift against a model trained before it. Same seed, same bytes: `python -m retrain.demo_data DIR`.

For the scoring and monitoring loop, `--scoring DIR --labels DIR` also write the same days as rows to
score (no label, one row per customer and day) and, apart, their labels as one file per day, the way a
label feed lands days later (a few customers' labels never come).
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
LABELS_SEED = 20250601
LABELS_MISSING = 0.03  # share of scored customers whose label never arrives

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
        written.append(_write(part, directory / f"events_{month}.parquet"))
    return written


def scoring_rows(events: pd.DataFrame) -> pd.DataFrame:
    """The rows to score: each day's events without the label, one row per customer and day (the first)."""
    day = events["event_time"].dt.floor("D")
    unique = ~pd.DataFrame({"day": day, "customer_id": events["customer_id"]}).duplicated()
    return events.loc[unique.to_numpy()].drop(columns=["churned"]).reset_index(drop=True)


def labels_of(events: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """The label of each scored row (key, time, churned), less the few that never arrive."""
    labelled = rows[["customer_id", "event_time"]].merge(
        events[["customer_id", "event_time", "churned"]], on=["customer_id", "event_time"], how="left", validate="1:1"
    )
    kept = np.random.default_rng(LABELS_SEED).random(len(labelled)) >= LABELS_MISSING
    return labelled.loc[kept].reset_index(drop=True)


def _write(frame: pd.DataFrame, path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    frame.reset_index(drop=True).to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path


def write_loop_data(events: pd.DataFrame, scoring_dir: Path, labels_dir: Path) -> list[Path]:
    """Rows to score as one Parquet file per month, their labels as one file per day."""
    rows = scoring_rows(events)
    written = []
    scoring_dir.mkdir(parents=True, exist_ok=True)
    for month, part in rows.groupby(rows["event_time"].dt.strftime("%Y-%m"), sort=True):
        written.append(_write(part, scoring_dir / f"rows_{month}.parquet"))
    labels = labels_of(events, rows)
    labels_dir.mkdir(parents=True, exist_ok=True)
    for day, part in labels.groupby(labels["event_time"].dt.strftime("%Y-%m-%d"), sort=True):
        written.append(_write(part, labels_dir / label_file(day)))
    return written


def label_file(day: dt.date | str) -> str:
    """The name of the label file of one day: how the demo lands labels day by day."""
    return f"labels_{day}.parquet"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--rows-per-day", type=int, default=ROWS_PER_DAY)
    parser.add_argument("--scoring", type=Path, help="also write the rows to score here")
    parser.add_argument("--labels", type=Path, help="and their labels here (with --scoring)")
    args = parser.parse_args(argv)
    events = generate(rows_per_day=args.rows_per_day)
    paths = write_monthly(events, args.directory)
    print(f"wrote {len(paths)} files to {args.directory}")
    if args.scoring and args.labels:
        loop = write_loop_data(events, args.scoring, args.labels)
        print(f"wrote {len(loop)} files of rows to score and labels to {args.scoring} and {args.labels}")


if __name__ == "__main__":
    main()
