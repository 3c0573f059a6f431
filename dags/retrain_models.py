"""One Airflow retraining DAG per model spec (YAML) in RETRAIN_SPECS_DIR (default: include/models/).

Wiring only: the spec decides everything. A spec that does not parse becomes a manual-only DAG
tagged `invalid-spec` whose task fails with the file, field and reason; the other DAGs still load.
An approver the auth manager does not know (simple auth manager) is such a spec error.
"""

from airflow.sdk import get_parsing_context

from retrain.errors import SpecError
from retrain.settings import training_backend
from retrain.spec import load_spec, spec_files
from retrain_operators.dag_factory import build_invalid_spec_dag, build_retrain_dag, dag_id_of_file
from retrain_operators.users import known_user_ids

_backend = training_backend()
# A task process parses this file only to find its own DAG, and Airflow tells it which one: build just
# that model's DAG there, not one per spec (benchmarks/README.md, fleet night). The DAG processor builds all.
_wanted = get_parsing_context().dag_id
_users = known_user_ids()
for _path in spec_files():
    if _wanted and dag_id_of_file(_path) != _wanted:
        continue
    try:
        _spec = load_spec(_path, known_users=_users)
    except SpecError as _error:
        _dag = build_invalid_spec_dag(_path, _error)
    else:
        _dag = build_retrain_dag(_spec, _path, backend=_backend)
    globals()[_dag.dag_id] = _dag
