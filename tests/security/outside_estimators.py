"""An estimator outside scikit-learn, admitted in tests by RETRAIN_ALLOWED_ESTIMATOR_PREFIXES: it writes
wherever its `memory` or `store` parameter points when it is fitted, as joblib's cache did."""

from __future__ import annotations

from pathlib import Path


class FileCachingClassifier:
    """Fits nothing; writes a cache file where it is told to."""

    def __init__(self, memory: str | None = None, store: str | None = None, n_estimators: int = 10) -> None:
        self.memory, self.store, self.n_estimators = memory, store, n_estimators

    def fit(self, X, y):
        for place in (self.memory, self.store):
            if place:
                Path(place).write_text("cache")
        return self
