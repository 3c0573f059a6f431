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
from retrain import registry as reg
from retrain.errors import RegistryError, TrainingError
from retrain.spec import ModelSpec

log = logging.getLogger("retrain.train")
TERMINATION_LOG = Path("/dev/termination-log")
# skops refuses any type it was not told to trust; these are the types our pipelines are built from.
TRUSTED_TYPE_PREFIXES = ("sklearn.", "numpy.", "builtins.")


def code_version() -> str:
    """The git SHA when running from a checkout (or RETRAIN_CODE_VERSION), else the package version."""
    explicit = os.environ.get("RETRAIN_CODE_VERSION")
    if explicit:
        return explicit
    head = Path(__file__).resolve().parents[2] / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            ref_path = head.parent / ref[5:]
            if ref_path.exists():
                return ref_path.read_text().strip()
            packed = head.parent / "packed-refs"
            for line in packed.read_text().splitlines() if packed.exists() else []:
                if line.endswith(" " + ref[5:]):
                    return line.split()[0]
            return __version__
        return ref
    except OSError:
        return __version__


def params_hash(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="retrain.train", description="Fit, log and register one model version.")
    parser.add_argument("--spec-json", required=True, help="The validated model spec as JSON.")
    parser.add_argument("--features-dir", required=True, type=Path, help="Feature partition folder.")
    parser.add_argument("--window-end", required=True, help="End date of the data window (YYYY-MM-DD).")
    parser.add_argument("--params-override", default="{}", help="JSON object of estimator parameter overrides.")
    parser.add_argument("--dag-id", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--task-id", required=True)
    parser.add_argument("--result-path", required=True, type=Path)
    parser.add_argument("--experiment", default=None, help="MLflow experiment (default: retrain/<model name>).")
    return parser.parse_args(argv)


def _find_existing_version(client, spec: ModelSpec, input_hash: str, p_hash: str, code: str):
    """The version trained before on exactly these inputs (data, parameters, code), if any.

    MLflow's version creation is not idempotent: without this lookup a task retry or a rerun of
    the same date would register duplicates.
    """
    query = (
        f"name = '{spec.name}' and tags.`{reg.TAG_INPUT_HASH}` = '{input_hash}'"
        f" and tags.`{reg.TAG_PARAMS_HASH}` = '{p_hash}' and tags.`{reg.TAG_CODE_VERSION}` = '{code}'"
    )
    ready = [v for v in client.search_model_versions(query) if v.status == "READY"]
    return min(ready, key=lambda v: int(v.version)) if ready else None


def _wait_ready(client, name: str, version: str, timeout_s: float = 300.0):
    deadline = time.monotonic() + timeout_s
    while True:
        mv = client.get_model_version(name, version)
        if mv.status == "READY":
            return mv
        if mv.status == "FAILED_REGISTRATION" or time.monotonic() > deadline:
            raise RegistryError(f"model {name} version {version} did not become READY (status {mv.status})")
        time.sleep(0.5)


def _trusted_types(pipeline) -> list[str]:
    import skops.io

    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(pipeline))
    refused = [t for t in untrusted if not t.startswith(TRUSTED_TYPE_PREFIXES)]
    if refused:
        raise TrainingError(f"the fitted pipeline contains types skops cannot safely serialize: {refused}")
    return untrusted


def holdout_metrics(pipeline, X, y, spec: ModelSpec) -> dict[str, float]:
    """The spec's primary and secondary scorer values on the holdout (higher is better)."""
    from sklearn.metrics import get_scorer

    names = dict.fromkeys([spec.evaluation.metric, *spec.evaluation.secondary_metrics])
    return {name: float(get_scorer(name)(pipeline, X, y)) for name in names}


def train(args: argparse.Namespace) -> dict:
    import mlflow
    from mlflow.models import infer_signature

    from retrain.features import build_pipeline, estimator_params, feature_matrix, read_partition, reference_sample

    spec = ModelSpec.model_validate_json(args.spec_json)
    overrides = json.loads(args.params_override)
    if not isinstance(overrides, dict):
        raise TrainingError(f"--params-override must be a JSON object, got {args.params_override!r}")
    params = estimator_params(spec, overrides)
    train_df, holdout_df, manifest = read_partition(args.features_dir)
    if train_df.empty or holdout_df.empty:
        raise TrainingError(
            f"{args.features_dir}: {len(train_df)} training and {len(holdout_df)} holdout rows; both must be non-empty"
        )
    code = code_version()
    p_hash = params_hash(params)
    input_hash = manifest["input_hash"]

    client = reg.client()
    existing = _find_existing_version(client, spec, input_hash, p_hash, code)
    if existing is not None:
        run = client.get_run(existing.run_id)
        log.info(
            "reusing model %s version %s (MLflow run %s): already trained on the same data hash, code and params",
            spec.name, existing.version, existing.run_id,
        )  # fmt: skip
        return {
            "run_id": existing.run_id,
            "model_version": str(existing.version),
            "metrics": {k: v for k, v in run.data.metrics.items() if k != "fit_seconds"},
            "reused": True,
            "input_hash": input_hash,
        }

    experiment = args.experiment or f"retrain/{spec.name}"
    mlflow.set_experiment(experiment)
    X_train, y_train = feature_matrix(train_df, spec)
    X_holdout, y_holdout = feature_matrix(holdout_df, spec)
    tags = {
        reg.TAG_DAG_ID: args.dag_id,
        reg.TAG_RUN_ID: args.run_id,
        reg.TAG_TASK_ID: args.task_id,
        reg.TAG_WINDOW_END: args.window_end,
        reg.TAG_INPUT_HASH: input_hash,
        reg.TAG_TRAIN_HASH: manifest["train_hash"],
        reg.TAG_HOLDOUT_HASH: manifest["holdout_hash"],
        reg.TAG_CODE_VERSION: code,
        reg.TAG_PARAMS_HASH: p_hash,
        "retrain.model_name": spec.name,
        "retrain.estimator": spec.model.estimator,
    }
    with mlflow.start_run(run_name=f"{spec.name}-{args.window_end}", tags=tags) as run:
        mlflow.log_params({f"model.{k}": v for k, v in params.items()})
        mlflow.log_params(
            {"estimator": spec.model.estimator, "window_end": args.window_end, "train_rows": len(train_df),
             "holdout_rows": len(holdout_df), "lookback_days": spec.data.lookback_days,
             "holdout_days": spec.data.holdout_days}
        )  # fmt: skip
        mlflow.log_dict(json.loads(args.spec_json), "spec.json")
        mlflow.log_input(
            mlflow.data.from_pandas(train_df, name=f"{spec.name}-train", digest=manifest["train_hash"][:32]),
            context="training",
        )
        mlflow.log_input(
            mlflow.data.from_pandas(holdout_df, name=f"{spec.name}-holdout", digest=manifest["holdout_hash"][:32]),
            context="holdout",
        )
        started = time.perf_counter()
        pipeline = build_pipeline(spec, overrides).fit(X_train, y_train)
        fit_seconds = time.perf_counter() - started
        metrics = holdout_metrics(pipeline, X_holdout, y_holdout, spec)
        mlflow.log_metrics({**metrics, "fit_seconds": fit_seconds})

        with tempfile.TemporaryDirectory() as tmp:
            reference = Path(tmp) / Path(reg.REFERENCE_ARTIFACT).name
            reference_sample(train_df, spec).to_parquet(reference, index=False)
            mlflow.log_artifact(str(reference), artifact_path=str(Path(reg.REFERENCE_ARTIFACT).parent))

        example = X_train.head(5)
        predict = pipeline.predict_proba if spec.task == "classification" else pipeline.predict
        signature = infer_signature(example, predict(example))
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=signature,
            input_example=example,
            serialization_format="skops",
            skops_trusted_types=_trusted_types(pipeline),
            pyfunc_predict_fn="predict_proba" if spec.task == "classification" else "predict",
        )
        version = mlflow.register_model(info.model_uri, spec.name, tags=tags)
        version = _wait_ready(client, spec.name, version.version)
        client.set_model_version_tag(spec.name, version.version, reg.TAG_DECISION, "pending_evaluation")
        result = {
            "run_id": run.info.run_id,
            "model_version": str(version.version),
            "metrics": metrics,
            "reused": False,
            "input_hash": input_hash,
        }
        mlflow.log_dict(result, "result.json")
    return result


def write_result(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(result, sort_keys=True))
    os.replace(tmp, path)


def _record_termination(message: str) -> None:
    try:
        if TERMINATION_LOG.parent.exists() and os.access(TERMINATION_LOG.parent, os.W_OK):
            TERMINATION_LOG.write_text(message[-4000:])
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    args = parse_args(argv)
    try:
        result = train(args)
        write_result(args.result_path, result)
    except Exception as error:  # noqa: BLE001 - the job's contract: any failure is exit 1 plus a termination message
        message = f"training failed: {type(error).__name__}: {error}"
        log.error("%s\n%s", message, traceback.format_exc())
        _record_termination(message)
        return 1
    log.info("registered %s", json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
