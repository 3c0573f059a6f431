"""Synthetic N x 20 data (timestamp, 14 numeric, 4 categorical, label) and the spec that reads it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

NUMERIC = [f"num_{i:02d}" for i in range(14)]
CATEGORICAL = [f"cat_{i}" for i in range(4)]
END = dt.date(2025, 5, 1)


def frame(rows: int, seed: int = 0, days: int = 56, end: dt.date = END) -> pd.DataFrame:
    """`rows` events spread over the `days` days before `end` (midnight UTC), reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp(end - dt.timedelta(days=days), tz="UTC")
    seconds = np.sort(rng.integers(0, days * 86_400, size=rows))
    data = {"event_time": start + pd.to_timedelta(seconds, unit="s")}
    for i, name in enumerate(NUMERIC):
        data[name] = rng.normal(i, 1.0 + i / 10, size=rows)
    for i, name in enumerate(CATEGORICAL):
        data[name] = pd.Categorical.from_codes(
            rng.integers(0, 5 + i, size=rows), [f"v{j}" for j in range(5 + i)]
        ).astype(str)
    logit = data["num_00"] - data["num_01"] / 2 + (data["cat_0"] == "v1")
    data["label"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype("int64")
    return pd.DataFrame(data)


def spec_document(name: str, uri: str) -> dict:
    return {
        "name": name,
        "data": {"uri": uri, "timestamp_column": "event_time", "lookback_days": 56, "holdout_days": 7},
        "target": "label",
        "task": "classification",
        "features": {"numeric": NUMERIC, "categorical": CATEGORICAL},
        "model": {"estimator": "sklearn.ensemble.HistGradientBoostingClassifier", "params": {"max_iter": 50}},
        "evaluation": {"metric": "roc_auc", "bootstrap": {"resamples": 50}},
        "schedule": {"start_date": "2025-01-01"},
    }


def write(rows: int, directory: Path, name: str = "bench", seed: int = 0, end: dt.date = END) -> Path:
    """Writes the data as one Parquet file and the spec next to it; returns the spec path."""
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / "data"
    data.mkdir(exist_ok=True)
    frame(rows, seed=seed, end=end).to_parquet(data / "events.parquet", index=False, row_group_size=250_000)
    spec = directory / f"{name}.yaml"
    spec.write_text(yaml.safe_dump(spec_document(name, str(data))))
    return spec
