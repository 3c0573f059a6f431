"""Builds the run's feature partition: training and holdout sets as Parquet, atomically, per date."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperator

from retrain_operators import common


class BuildFeaturesOperator(BaseOperator):
    ui_color = "#cfe2f3"

    def __init__(self, *, spec, **kwargs) -> None:
        super().__init__(**kwargs)
        self.spec = spec

    def execute(self, context: Any) -> dict:
        from retrain.data import read_window
        from retrain.features import build_partition, clean_stale_temporaries

        spec = self.spec
        window = common.resolve_window(context, spec)
        target = common.features_dir(context, spec)
        for leftover in clean_stale_temporaries(target.parent):
            self.log.warning("removed a partial partition left by an interrupted run: %s", leftover)
        data = read_window(spec, window, columns=[*spec.features.columns, spec.target])
        partition = build_partition(data.frame, spec, window, target)
        self.log.info(
            "feature partition %s: %d training rows, %d holdout rows, input hash %s",
            partition.path, partition.train_rows, partition.holdout_rows, partition.input_hash[:12],
        )  # fmt: skip
        return {**partition.to_dict(), "window": window.to_dict()}
