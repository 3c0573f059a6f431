"""A whole DAG on text labels: scikit-learn's breast cancer data ("malignant"/"benign"), half Parquet and
half CSV, two nights. The registry ends with a champion that predicts the labels as text, tagged with the
positive class the spec declared, with metrics computed for that class."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sklearn.metrics import average_precision_score, f1_score

from retrain.features import feature_matrix, read_partition
from retrain.spec import load_spec
from retrain.tags import Tag
from tests.support import TASKS, artifacts, run_dag
from tests.support.labelled import START, events, spec_document, write_spec_file

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("airflow_db", "mlflow_server")]

NIGHT_1 = START + dt.timedelta(days=29)
NIGHT_2 = START + dt.timedelta(days=30)


def test_text_labels_train_evaluate_and_promote_with_the_declared_positive_class(
    spec_dir, registry, mlflow_client, tmp_path
):
    import mlflow

    data = tmp_path / "data"
    data.mkdir()
    frame = events("breast_cancer", days=31)
    half = len(frame) // 2
    frame.iloc[:half].to_parquet(data / "events_a.parquet", index=False)
    frame.iloc[half:].to_csv(data / "events_b.csv", index=False)
    name = "cancer_labels"
    spec_path = write_spec_file(
        spec_dir,
        spec_document(name, data, frame, metric="roc_auc", secondary_metrics=["f1", "average_precision"],
                      slices=["size_band"], positive_label="malignant"),
    )  # fmt: skip
    spec = load_spec(spec_path)

    states, _ = run_dag(spec_path, NIGHT_1)
    assert states == dict.fromkeys(TASKS, "success")
    champion = registry.champion(name)
    assert champion.version == "1"
    assert champion.tags[Tag.POSITIVE_LABEL] == '"malignant"'

    # The logged metrics are for "malignant" as the positive class, on the partition's holdout.
    _, holdout, _ = read_partition(artifacts(name) / "features" / f"end_date={NIGHT_1}")
    assert str(holdout["label"].dtype) == "str"
    X, y = feature_matrix(holdout, spec)
    model = registry.load_model(name, "1")
    assert list(model.classes_) == ["benign", "malignant"]
    assert set(model.predict(X)) <= {"benign", "malignant"}
    metrics = mlflow_client.get_run(champion.run_id).data.metrics
    assert metrics["f1"] == pytest.approx(f1_score(y, model.predict(X), pos_label="malignant"))
    assert metrics["average_precision"] == pytest.approx(
        average_precision_score(y == "malignant", model.predict_proba(X)[:, 1])
    )
    info = mlflow.models.get_model_info(f"models:/{name}/1")
    assert info.signature.outputs.input_names() == ["benign", "malignant"]
    assert info.metadata == {"classes": ["benign", "malignant"], "positive_label": "malignant"}

    # Night 2: the challenger against the champion, on text labels (bootstrap, slices, baseline).
    states, _ = run_dag(spec_path, NIGHT_2)
    assert states["evaluate"] == "success" and states["promote"] in ("success", "skipped")
    challenger = registry.version(name, "2")
    assert challenger.tags[Tag.POSITIVE_LABEL] == '"malignant"'
    evaluation = json.loads(challenger.tags[Tag.EVALUATION])
    assert evaluation["positive_label"] == "malignant" and evaluation["classes"] == ["benign", "malignant"]
    assert evaluation["champion"]["secondary"]["f1"] is not None and evaluation["bootstrap"]["resamples"] == 20
    assert evaluation["baseline"] is not None and evaluation["challenger"]["slices"]["size_band"]
    assert registry.champion(name).version in ("1", "2")
