"""predict: the resolved champion version's predictions for the day, written as the day's Parquet partition.

The same version on the same rows keeps the existing file (a rerun changes nothing); a new champion or new
rows replace it atomically. A failure before the rename leaves the previous file as it was.
"""

from __future__ import annotations

from retrain.contracts import ChampionResult, PredictionResult
from retrain.errors import RetrainError
from retrain.pipeline import StepContext
from retrain.scoring import predict, read_day_rows, rows_hash, scoring_spec, write_predictions


def run(ctx: StepContext) -> PredictionResult:
    """Scores the day's rows with the version `resolve_champion` recorded (never the alias again)."""
    spec, day = ctx.spec, ctx.run.day
    champion = ctx.input(ChampionResult)
    if champion is None:
        raise RetrainError("no champion version from resolve_champion; rerun the scoring DAG from its first task")
    keys = scoring_spec(spec).key_columns
    rows = read_day_rows(spec, day).frame
    model = ctx.registry.load_model(spec.name, champion.version)
    frame, classes = predict(model, rows, spec, champion.version, ctx.run.run_id)
    written = write_predictions(
        frame, spec.name, day, champion.version, rows_hash(rows[[*keys, *spec.features.columns]], keys), classes
    )
    for note in written.notes.values():
        ctx.log.warning("%s", note)
    if written.written:
        replaced = f", replacing version {written.replaced_version}'s" if written.replaced_version else ""
        ctx.log.info(
            "wrote %d predictions of %s version %s for %s%s: %s",
            len(frame),
            spec.name,
            champion.version,
            day,
            replaced,
            written.path,
        )
    else:
        ctx.log.info(
            "predictions for %s by version %s on the same rows already exist: kept %s",
            day,
            champion.version,
            written.path,
        )
    return PredictionResult(
        path=str(written.path), day=day.isoformat(), version=champion.version, rows=len(frame),
        written=written.written, replaced_version=written.replaced_version,
    )  # fmt: skip
