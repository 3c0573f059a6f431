"""build_features: the window's training and holdout sets as a Parquet partition, atomically, per end date."""

from __future__ import annotations

from retrain.contracts import FeaturesResult
from retrain.features import clean_stale_temporaries
from retrain.pipeline import StepContext


def run(ctx: StepContext) -> FeaturesResult:
    """Writes the partition at the window's features folder (replacing an earlier one) and returns it."""
    window, target = ctx.run.window, ctx.features_dir
    for leftover in clean_stale_temporaries(target.parent):
        ctx.log.warning("removed a partial partition left by an interrupted run: %s", leftover)
    partition = ctx.source.build_partition(window, target)  # a database streams the window in order
    ctx.log.info(
        "feature partition %s: %d training rows, %d holdout rows, input hash %s",
        partition.path, partition.train_rows, partition.holdout_rows, partition.input_hash[:12],
    )  # fmt: skip
    return FeaturesResult(**partition.to_dict(), window=window.to_dict())
