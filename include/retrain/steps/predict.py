"""predict: the resolved champion version's predictions for the day, written as the day's Parquet partition,
and, with `scoring.output`, to that table too.

The same version on the same rows keeps the existing file (a rerun changes nothing); a new champion or new
rows replace it atomically. A failure before the rename leaves the previous file as it was. The table then
receives the partition as it stands (the file kept or written), replacing the day's rows in one transaction:
it holds what the file holds, and a rerun after a failed table write completes it.
"""

from __future__ import annotations

from retrain.contracts import ChampionResult, PredictionResult
from retrain.errors import RetrainError
from retrain.pipeline import StepContext
from retrain.scoring import predict, read_day_rows, read_predictions, rows_hash, scoring_spec, write_predictions


def run(ctx: StepContext) -> PredictionResult:
    """Scores the day's rows with the version `resolve_champion` recorded (never the alias again)."""
    spec, day = ctx.spec, ctx.run.day
    champion = ctx.input(ChampionResult)
    if champion is None:
        raise RetrainError("no champion version from resolve_champion; rerun the scoring DAG from its first task")
    scoring = scoring_spec(spec)
    keys = scoring.key_columns
    rows = read_day_rows(spec, day, engines=ctx.engines).frame
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
    table = None
    if scoring.output is not None:
        from retrain.sources.sql_output import write_day

        if ctx.engines is None:
            raise RetrainError(
                f"field 'scoring.output.conn_id': {spec.name} writes to connection {scoring.output.conn_id!r}, but this"
                " process was given no way to open connections (run it through Airflow, or pass an engine factory)"
            )
        stored = frame if written.written else read_predictions(spec.name, day).frame
        table = write_day(ctx.engines(scoring.output.conn_id), scoring.output, stored, day)
        ctx.log.info("wrote %d predictions for %s to %s (replacing %d)", table.rows, day, table.location, table.replaced)
    return PredictionResult(
        path=str(written.path), day=day.isoformat(), version=champion.version, rows=len(frame),
        written=written.written, replaced_version=written.replaced_version,
        table=None if table is None else table.location, table_rows=None if table is None else table.rows,
    )  # fmt: skip
