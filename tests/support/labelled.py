"""Public data sets that scikit-learn ships, as timestamped event data for the label-type tests:
breast cancer (binary: "malignant"/"benign", or a boolean) and iris (three species names).

The rows are shuffled with a fixed seed (iris is sorted by species) and spread evenly over `days`
from `start`, so every window of a few days holds every class. Same arguments, same frame.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml

START = dt.date(2025, 3, 1)
FEATURES = {
    "breast_cancer": ["mean radius", "mean texture", "mean smoothness", "worst concavity"],
    "iris": ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"],
}


def events(
    dataset: Literal["breast_cancer", "iris"] = "breast_cancer",
    label: Literal["text", "bool"] = "text",
    start: dt.date = START,
    days: int = 30,
) -> pd.DataFrame:
    """event_time, four numeric features (snake_case), `size_band` (small/medium/large) and `label`."""
    from sklearn.datasets import load_breast_cancer, load_iris

    loaded = (load_breast_cancer if dataset == "breast_cancer" else load_iris)(as_frame=True)
    order = np.random.default_rng(0).permutation(len(loaded.target))
    data = loaded.data.iloc[order].reset_index(drop=True)
    target = loaded.target.to_numpy()[order]
    frame = data[FEATURES[dataset]].rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    seconds = np.linspace(0, days * 86_400, len(frame), endpoint=False).astype("int64")
    frame.insert(0, "event_time", pd.Timestamp(start, tz="UTC") + pd.to_timedelta(seconds, unit="s"))
    first = frame.columns[1]
    frame["size_band"] = pd.qcut(frame[first], 3, labels=["small", "medium", "large"]).astype(str)
    if label == "bool":
        frame["label"] = target == 0  # breast cancer: class 0 is malignant
    else:
        frame["label"] = pd.Series(loaded.target_names[target], dtype="str")
    return frame


def spec_document(name: str, uri: Path, frame: pd.DataFrame, **evaluation) -> dict:
    """A model spec for `events()` data: a four-week window with a one-week holdout, a small model,
    few bootstrap resamples (cheap in a DAG run); `evaluation` fields override the defaults."""
    numeric = [c for c in frame.columns if c not in ("event_time", "size_band", "label")]
    return {
        "name": name,
        "data": {"uri": str(uri), "timestamp_column": "event_time", "lookback_days": 28, "holdout_days": 7},
        "target": "label",
        "task": "classification",
        "features": {"numeric": numeric, "categorical": ["size_band"]},
        "model": {"estimator": "sklearn.ensemble.HistGradientBoostingClassifier", "params": {"max_iter": 30}},
        "evaluation": {"bootstrap": {"resamples": 20}, **evaluation},
        "validation": {"min_rows": 50},
        "schedule": {"start_date": "2025-01-01", "retries": 0},
    }


def write_spec_file(directory: Path, document: dict) -> Path:
    """The spec as `<name>.yaml` in `directory`."""
    path = directory / f"{document['name']}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path
