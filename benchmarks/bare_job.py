"""One retraining job as a bare script, no Airflow: read the window, validate, build the features, train
(the same training command the DAG runs), evaluate, decide and promote. The baseline of orchestration.py
and fleet.py. Usage: python bare_job.py SPEC OUT_DIR [END_DATE, default 2025-05-01]
"""

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from retrain.data import read_window
from retrain.evaluation import compare
from retrain.features import build_partition, feature_matrix, read_partition
from retrain.invocation import training_invocation
from retrain.options import Run, RunOptions
from retrain.policy import decide
from retrain.registry import Registry
from retrain.spec import load_spec
from retrain.validation import validate_frame
from retrain.window import Window

spec = load_spec(sys.argv[1])
out = Path(sys.argv[2])
end = dt.date.fromisoformat(sys.argv[3]) if len(sys.argv) > 3 else dt.date(2025, 5, 1)
window = Window.ending(end, spec.data)
frame = read_window(spec, window).frame
assert validate_frame(frame, spec, window).success
partition = build_partition(frame[list(spec.input_columns)], spec, window, out / window.partition)
inv = training_invocation(
    spec,
    Run(spec.dag_id, "bare", RunOptions(), window),
    task_id="train",
    features_dir=str(partition.path),
    result_path=str(out / "result.json"),
)
subprocess.run(inv.command(sys.executable), env={**os.environ, **inv.env}, check=True, capture_output=True)
result = json.loads((out / "result.json").read_text())
registry = Registry()
train, holdout, _ = read_partition(partition.path)
X, y = feature_matrix(holdout, spec)
model = registry.load_model(spec.name, result["model_version"])
decision = decide(compare(None, model, X, y, train[spec.target], spec), spec.promotion)
if decision.promote:
    registry.promote(spec.name, result["model_version"], expected_champion=None)
