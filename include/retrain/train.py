"""The training job: `python -m retrain.train ...`, run identically by a Kubernetes pod and a local process.

It reads a feature partition, fits the spec's pipeline, logs everything to MLflow (params,
metrics, model with signature, dataset lineage, code version, Airflow identifiers), registers a
model version and writes {"run_id", "model_version", "metrics", ...} as JSON to --result-path.

A rerun with the same inputs (data hash, code version, parameters) for the same Airflow run
reuses the version it registered before instead of registering a duplicate: retries are safe.
On failure the reason goes to /dev/termination-log (when writable) so Kubernetes shows it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

from retrain import __version__
from retrain.contracts import TrainingResult
from retrain.credentials import RedactingStream, environment_secrets, load_secret_files, redact
from retrain.errors import SpecError, TrainingError
from retrain.options import Run
from retrain.registry import REFERENCE_ARTIFACT, Registry
from retrain.registry.tracking import training_run
from retrain.sklearn_catalog import POSITIVE_CLASS_SCORERS
from retrain.spec import ModelSpec
from retrain.tags import Decision, Tag

log = logging.getLogger("retrain.train")
TERMINATION_LOG = Path("/dev/termination-log")
# skops refuses any type it was not told to trust; these are the types our pipelines are built from.
TRUSTED_TYPE_PREFIXES = ("sklearn.", "numpy.", "builtins.")


def code_version(root: Path | None = None) -> str:
    """The git commit of the checkout at `root` (default: this project), RETRAIN_CODE_VERSION when set (the
    images have no .git: their build sets it), else the package version."""
    explicit = os.environ.get("RETRAIN_CODE_VERSION")
    if explicit:
        return explicit
    try:
        return git_head(root or Path(__file__).resolve().parents[2]) or __version__
    except (OSError, UnicodeDecodeError):
        return __version__


def git_head(root: Path) -> str | None:
    """The commit HEAD points at in the checkout at `root`, read from the files (no git binary needed).

    `.git` is a folder in a clone and a file (`gitdir: <path>`) in a git worktree or a submodule; refs then
    live in the worktree's own git dir or in the common one it names (`commondir`), loose or packed.
    """
    dot_git = root / ".git"
    if dot_git.is_file():
        pointer = dot_git.read_text().strip()
        if not pointer.startswith("gitdir:"):
            return None
        git_dir = (root / pointer.removeprefix("gitdir:").strip()).resolve()
    else:
        git_dir = dot_git
    head = (git_dir / "HEAD").read_text().strip()
    if not head.startswith("ref: "):
        return head or None  # detached HEAD: the commit itself
    ref = head.removeprefix("ref: ")
    common = git_dir / "commondir"
    common_dir = (git_dir / common.read_text().strip()).resolve() if common.is_file() else git_dir
    for folder in dict.fromkeys([git_dir, common_dir]):
        loose = folder / ref
        if loose.is_file():
            return loose.read_text().strip()
    packed = common_dir / "packed-refs"
    for line in packed.read_text().splitlines() if packed.is_file() else []:
        if line.endswith(" " + ref):
            return line.split()[0]
    return None


def params_hash(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]


def training_key(spec: ModelSpec, params: dict) -> str:
    """SHA-256 of everything besides the data that shapes the fitted model: the estimator class, its resolved
    parameters (random_state included), the features, the target, the task and the pipeline's version.
    With the data hash and the code version it decides whether a rerun may reuse a version: leave a field
    out and a changed spec silently gets the old model (RandomForest and ExtraTrees shared a key)."""
    from retrain.features import PIPELINE_VERSION

    shaping = {
        "estimator": spec.model.estimator,
        "params": params,
        "random_state": spec.model.random_state,
        "features": spec.features.model_dump(mode="json"),
        "target": spec.target,
        "task": spec.task,
        "timestamp_column": spec.data.timestamp_column,
        "pipeline_version": PIPELINE_VERSION,
    }
    return hashlib.sha256(json.dumps(shaping, sort_keys=True, default=str).encode()).hexdigest()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="retrain.train", description="Fit, log and register one model version.")
    parser.add_argument("--spec-json", required=True, help="The validated model spec as JSON.")
    parser.add_argument("--run-json", required=True, help="The Airflow run: ids, trigger-form options, window.")
    parser.add_argument("--task-id", required=True)
    parser.add_argument("--features-dir", required=True, type=Path, help="Feature partition folder.")
    parser.add_argument("--result-path", required=True, type=Path)
    parser.add_argument("--experiment", default=None, help="MLflow experiment (default: retrain/<model name>).")
    return parser.parse_args(argv)


def _trusted_types(pipeline) -> list[str]:
    import skops.io

    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(pipeline))
    refused = [t for t in untrusted if not t.startswith(TRUSTED_TYPE_PREFIXES)]
    if refused:
        raise TrainingError(f"the fitted pipeline contains types skops cannot safely serialize: {refused}")
    return untrusted


def holdout_metrics(pipeline, X, y, spec: ModelSpec, labels=None) -> dict[str, float]:
    """The spec's primary and secondary scorer values on the holdout (higher is better), with the positive
    class of `labels` (a `retrain.evaluation.ClassLabels`) where a metric depends on it, as evaluation does."""
    from sklearn.metrics import get_scorer

    names = dict.fromkeys([spec.evaluation.metric, *spec.evaluation.secondary_metrics])
    scorers = {name: get_scorer(name) if labels is None else labels.scorer(name) for name in names}
    return {name: float(scorer(pipeline, X, y)) for name, scorer in scorers.items()}


def training_labels(spec: ModelSpec, y_train):
    """The classes the model will learn (sorted, as scikit-learn's `classes_`) and the positive one; None for
    regression. Raises TrainingError naming the field when the spec's metrics or positive class do not fit."""
    import numpy as np

    from retrain.evaluation import class_labels

    try:
        labels = class_labels(spec, np.unique(np.asarray(y_train)))
        if labels is not None:
            for name in (spec.evaluation.metric, *spec.evaluation.secondary_metrics):
                labels.scorer(name)  # refuses a two-class metric on more classes, by name
    except SpecError as error:
        raise TrainingError(f"the training set does not fit the spec: {error}") from None
    if labels is not None and labels.positive is not None and spec.evaluation.positive_label is None:
        metrics = (spec.evaluation.metric, *spec.evaluation.secondary_metrics)
        depending = [m for m in metrics if m in POSITIVE_CLASS_SCORERS]
        (log.warning if depending else log.info)(
            "%s count %r as the positive class: %s; set evaluation.positive_label to choose",
            ", ".join(depending) or "binary metrics", labels.positive, labels.rule,
        )  # fmt: skip
    return labels


def train(args: argparse.Namespace) -> TrainingResult:
    """Fits the spec's pipeline on the partition, logs the run and registers the version (or reuses
    the one trained on the same inputs)."""
    from retrain.evaluation import plain_label, positive_label_tag
    from retrain.features import build_pipeline, estimator_params, feature_matrix, read_partition, reference_sample

    spec = ModelSpec.model_validate_json(args.spec_json)
    run = Run.from_dict(json.loads(args.run_json))
    overrides = dict(run.options.estimator_params)
    params = estimator_params(spec, overrides)
    train_df, holdout_df, manifest = read_partition(args.features_dir)
    if train_df.empty or holdout_df.empty:
        raise TrainingError(
            f"{args.features_dir}: {len(train_df)} training and {len(holdout_df)} holdout rows; both must be non-empty"
        )
    code = code_version()
    p_hash = params_hash(params)
    key = training_key(spec, params)
    input_hash = manifest["input_hash"]
    window_end = run.window.end_date.isoformat()

    registry = Registry()
    # MLflow's version creation is not idempotent: without this lookup a task retry or a rerun of
    # the same date would register duplicates.
    reusable = registry.versions(spec.name, {Tag.INPUT_HASH: input_hash, Tag.TRAINING_KEY: key, Tag.CODE_VERSION: code})
    existing = next((v for v in reusable if v.status == "READY"), None)
    if existing is not None:
        log.info(
            "reusing model %s version %s (MLflow run %s): already trained on the same data, code and training key",
            spec.name, existing.version, existing.run_id,
        )  # fmt: skip
        metrics = registry.run_metrics(existing.run_id)
        return TrainingResult(
            run_id=existing.run_id or "",
            model_version=existing.version,
            metrics={k: v for k, v in metrics.items() if k != "fit_seconds"},
            reused=True,
            input_hash=input_hash,
        )

    X_train, y_train = feature_matrix(train_df, spec)
    X_holdout, y_holdout = feature_matrix(holdout_df, spec)
    labels = training_labels(spec, y_train)  # before the MLflow run: a misfit leaves no failed run behind
    tags = {
        Tag.DAG_ID: run.dag_id,
        Tag.RUN_ID: run.run_id,
        Tag.TASK_ID: args.task_id,
        Tag.WINDOW_END: window_end,
        Tag.INPUT_HASH: input_hash,
        Tag.TRAIN_HASH: manifest["train_hash"],
        Tag.HOLDOUT_HASH: manifest["holdout_hash"],
        Tag.CODE_VERSION: code,
        Tag.PARAMS_HASH: p_hash,
        Tag.TRAINING_KEY: key,
        Tag.MODEL_NAME: spec.name,
        Tag.ESTIMATOR: spec.model.estimator,
        Tag.TRIGGER: run.trigger.kind,
        Tag.TRIGGER_REASON: run.trigger.reason,
        Tag.POSITIVE_LABEL: positive_label_tag(None if labels is None else labels.positive),
    }
    tags = {str(k): v for k, v in tags.items()}
    experiment = args.experiment or f"retrain/{spec.name}"
    with training_run(experiment, f"{spec.name}-{window_end}", tags) as logged:
        logged.params({f"model.{k}": v for k, v in params.items()})
        logged.params(
            {"estimator": spec.model.estimator, "window_end": window_end, "train_rows": len(train_df),
             "holdout_rows": len(holdout_df), "lookback_days": spec.data.lookback_days,
             "holdout_days": spec.data.holdout_days}
        )  # fmt: skip
        logged.document(json.loads(args.spec_json), "spec.json")
        logged.dataset(train_df, f"{spec.name}-train", manifest["train_hash"][:32], context="training")
        logged.dataset(holdout_df, f"{spec.name}-holdout", manifest["holdout_hash"][:32], context="holdout")
        started = time.perf_counter()
        pipeline = build_pipeline(spec, overrides).fit(X_train, y_train)
        fit_seconds = time.perf_counter() - started
        if labels is not None and list(labels.classes) != [plain_label(c) for c in pipeline.classes_]:
            raise TrainingError(f"the model learned classes {list(pipeline.classes_)}, not {list(labels.classes)}")
        metrics = holdout_metrics(pipeline, X_holdout, y_holdout, spec, labels)
        logged.metrics({**metrics, "fit_seconds": fit_seconds})

        with tempfile.TemporaryDirectory() as tmp:
            reference = Path(tmp) / Path(REFERENCE_ARTIFACT).name
            reference_sample(train_df, spec).to_parquet(reference, index=False)
            logged.artifact(str(reference), artifact_path=str(Path(REFERENCE_ARTIFACT).parent))

        predict = "predict_proba" if spec.task == "classification" else "predict"
        model_uri = logged.sklearn_model(pipeline, X_train.head(5), predict, _trusted_types(pipeline), labels)
        version = registry.wait_ready(spec.name, logged.register(model_uri, spec.name, tags)).version
        registry.set_tags(spec.name, version, {Tag.DECISION: Decision.PENDING})
        result = TrainingResult(
            run_id=logged.run_id, model_version=version, metrics=metrics, reused=False, input_hash=input_hash
        )
        logged.document(result.to_xcom(), "result.json")
    return result


def write_result(path: Path, result: TrainingResult) -> None:
    """The job's result where the pod's XCom sidecar (or the local backend) reads it, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(result.to_xcom(), sort_keys=True))
    os.replace(tmp, path)


def _record_termination(message: str) -> None:
    try:
        if TERMINATION_LOG.parent.exists() and os.access(TERMINATION_LOG.parent, os.W_OK):
            TERMINATION_LOG.write_text(message[-4000:])
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    """The job: exit 0 with the result written, or 1 with the reason logged and in the termination message.

    Credentials mounted as files are read first (a pod's MLflow Secret); everything the job prints goes
    through a redacting stream, so no credential in the environment or in a URI reaches the log (MLflow's
    client quotes its tracking URI in errors and in its "View run at" lines).
    """
    load_secret_files()
    secrets = environment_secrets(os.environ)
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = RedactingStream(sys.stdout, secrets), RedactingStream(sys.stderr, secrets)
    try:
        return _run(argv, secrets)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = streams


def _run(argv: list[str] | None, secrets: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    args = parse_args(argv)
    try:
        result = train(args)
        write_result(args.result_path, result)
    except Exception as error:  # noqa: BLE001 - the job's contract: any failure is exit 1 plus a termination message
        message = redact(f"training failed: {type(error).__name__}: {error}", secrets)
        log.error("%s\n%s", message, traceback.format_exc())
        _record_termination(message)
        return 1
    log.info("registered %s", json.dumps(result.to_xcom(), sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
