"""Domain logic of automated retraining: specs, data, validation, drift, features, training,
evaluation and promotion. Never imports Airflow: it runs unchanged inside the training image."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("airflow-retrain")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
