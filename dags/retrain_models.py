"""The Airflow DAGs of every model spec (YAML) in RETRAIN_SPECS_DIR (default: include/models/): retrain_<name>, and
score_<name> and monitor_<name> for specs with `scoring` and `monitoring` sections.

Wiring only: the spec decides everything. A spec that does not parse (or two files that claim one DAG
id) becomes a manual-only DAG tagged `invalid-spec` whose task fails with the file, field and reason;
the other DAGs still load.
An approver the auth manager does not know (simple auth manager) is such a spec error.
"""

from airflow.sdk import get_parsing_context

from retrain.settings import training_backend
from retrain.spec import spec_files
from retrain_operators.dag_factory import build_model_dags
from retrain_operators.users import known_user_ids

# A task process parses this file only to find its own DAG, and Airflow tells it which one: build just
# that model's DAGs there, not every spec's (benchmarks/README.md, fleet night). The DAG processor builds all.
globals().update(
    build_model_dags(
        spec_files(), backend=training_backend(), only=get_parsing_context().dag_id, known_users=known_user_ids()
    )
)
