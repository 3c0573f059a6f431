"""The Airflow DAGs of every model spec (YAML) in RETRAIN_SPECS_DIR (default: include/models/): retrain_<name>, and
score_<name> and monitor_<name> for specs with `scoring` and `monitoring` sections.

Wiring only: the spec decides everything. A spec that does not parse becomes a manual-only DAG
tagged `invalid-spec` whose task fails with the file, field and reason; the other DAGs still load.
"""

from retrain.errors import SpecError
from retrain.settings import training_backend
from retrain.spec import load_spec, spec_files
from retrain_operators.dag_factory import build_invalid_spec_dag, build_model_dags

_backend = training_backend()
for _path in spec_files():
    try:
        _spec = load_spec(_path)
    except SpecError as _error:
        _dags = [build_invalid_spec_dag(_path, _error)]
    else:
        _dags = build_model_dags(_spec, _path, backend=_backend)
    for _dag in _dags:
        globals()[_dag.dag_id] = _dag
