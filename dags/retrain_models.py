"""One Airflow retraining DAG per model spec (YAML) in RETRAIN_SPECS_DIR (default: include/models/).

Wiring only: the spec decides everything. A spec that does not parse (or two files that claim one DAG
id) becomes a manual-only DAG tagged `invalid-spec` whose task fails with the file, field and reason;
the other DAGs still load.
"""

from retrain.settings import training_backend
from retrain.spec import spec_files
from retrain_operators.dag_factory import build_model_dags

globals().update(build_model_dags(spec_files(), backend=training_backend()))
