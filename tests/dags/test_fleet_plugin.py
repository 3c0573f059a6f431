"""The fleet page's view of the DAG files: the DAG ids it links to and reads are the ones the DAG files build."""

from __future__ import annotations

from retrain.fleet import SpecCatalog
from tests.dags.test_dag_integrity import dagbag
from tests.support import REPO, write_spec


def test_the_page_knows_the_dag_id_of_every_spec_and_of_the_rollback_dag(tmp_path):
    from retrain_ui.app import ROLLBACK_DAG_ID

    write_spec(tmp_path, "good_one")
    (tmp_path / "Broken-One.yaml").write_text("name: broken_one\n")
    bag = dagbag(tmp_path)
    assert bag.import_errors == {}
    assert {entry.dag_id for entry in SpecCatalog(tmp_path).entries()} | {ROLLBACK_DAG_ID} == set(bag.dag_ids)
    assert "invalid-spec" in bag.dags["retrain_broken_one"].tags


def test_the_plugin_file_is_the_only_module_of_the_plugins_folder_outside_its_packages():
    top_level = sorted(p.name for p in (REPO / "plugins").glob("*.py"))
    assert top_level == ["retrain_plugin.py"]
