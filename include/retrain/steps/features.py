"""build_features: the window's training and holdout sets as a Parquet partition, atomically, per end date."""

from __future__ import annotations

from retrain.contracts import FeaturesResult
from retrain.data import read_window
from retrain.features import build_partition, clean_stale_temporaries
from retrain.pipeline import StepContext


def run(ctx: StepContext) -> FeaturesResult:
    """Writes the partition at the window's features folder (replacing an earlier one) and returns it."""
    spec, window = ctx.spec, ctx.run.window
    target = ctx.features_dir
    for leftover in clean_stale_temporaries(target.parent):
        ctx.log.warning("removed a partial partition left by an interrupted run: %s", leftover)
    data = read_window(spec, window, columns=[*spec.features.columns, spec.target])
    partition = build_partition(data.frame, spec, window, target)
    ctx.log.info(
        "feature partition %s: %d training rows, %d holdout rows, input hash %s",
        partition.path, partition.train_rows, partition.holdout_rows, partition.input_hash[:12],
    )  # fmt: skip
    return FeaturesResult(**partition.to_dict(), window=window.to_dict())
