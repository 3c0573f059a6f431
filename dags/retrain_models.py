"""One Airflow retraining DAG per model spec (YAML) in RETRAIN_SPECS_DIR (default: include/models/).

Wiring only: the spec decides everything. A spec that does not parse becomes a manual-only DAG
tagged `invalid-spec` whose task fails with the file, field and reason; the other DAGs still load.
"""

from retrain.errors import SpecError
from retrain.settings import training_backend
from retrain.spec import load_spec, spec_files
from retrain_operators.dag_factory import build_invalid_spec_dag, build_retrain_dag

_backend = training_backend()
for _path in spec_files():
    try:
        _spec = load_spec(_path)
    except SpecError as _error:
        _dag = build_invalid_spec_dag(_path, _error)
    else:
        _dag = build_retrain_dag(_spec, _path, backend=_backend)
    globals()[_dag.dag_id] = _dag
