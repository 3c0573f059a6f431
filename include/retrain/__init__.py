"""Domain logic of automated retraining: specs, data, validation, drift, features, training,
evaluation and promotion. Never imports Airflow: it runs unchanged inside the training image."""

import os
from importlib.metadata import PackageNotFoundError, version

# Arrow's allocator (mimalloc) keeps freed pages for reuse. Turning a Parquet window into pandas frees
# each column's chunks once, so by default those cached pages raise a read's peak memory by up to 70%
# (benchmarks/README.md). Returning them at once keeps the peak near the window itself. mimalloc reads
# this when pyarrow loads, so it is set here, before any module of this package imports pandas or
# pyarrow; a value set by the deployment wins.
os.environ.setdefault("MIMALLOC_PURGE_DELAY", "0")

try:
    __version__ = version("airflow-retrain")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
