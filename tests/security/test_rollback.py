"""Rollback restores only what the policy passed in a real run: a version that only a dry run or a forced
promotion marked `passed_evaluation` needs the form's `force` (recorded on the version), and a version
that does not exist fails the task at once instead of being retried."""

from __future__ import annotations

import time

import pytest

from retrain.registry import CHAMPION_ALIAS, rollback_problem
from retrain.tags import Decision, Tag
from tests.support import registry_snapshot, run_rollback

pytestmark = pytest.mark.security

PASSED = {Tag.PASSED_EVALUATION: "true", Tag.FORCED: "false"}


@pytest.mark.parametrize(
    ("tags", "qualifies"),
    [
        ({**PASSED, Tag.DECISION: Decision.PROMOTED}, True),
        ({**PASSED, Tag.DECISION: Decision.APPROVED}, True),
        ({**PASSED, Tag.DECISION: Decision.CHAMPION}, True),
        ({**PASSED, Tag.DECISION: Decision.DRY_RUN}, False),
        ({Tag.PASSED_EVALUATION: "true", Tag.FORCED: "true", Tag.DECISION: Decision.DRY_RUN}, False),
        ({Tag.PASSED_EVALUATION: "true", Tag.FORCED: "true", Tag.DECISION: Decision.PROMOTED}, False),
        ({Tag.PASSED_EVALUATION: "false", Tag.DECISION: Decision.DECLINED}, False),
        ({Tag.DECISION: Decision.PENDING}, False),
        ({}, False),
    ],
)
def test_only_versions_the_policy_passed_in_a_real_run_qualify(tags, qualifies):
    assert (rollback_problem(tags) is None) is qualifies


@pytest.fixture
def dry_run_forced_version(guarded_model):
    """A real version of the guarded model, tagged as a dry run with force_promote tags it (passed_evaluation
    true, forced, dry_run_would_promote); the champion is restored afterwards."""
    import mlflow
    from mlflow.tracking import MlflowClient

    spec_path, registry = guarded_model
    champion = registry.champion("guarded")
    source = MlflowClient(registry.tracking_uri).get_model_version("guarded", champion.version).source
    version = mlflow.register_model(source, "guarded").version  # the champion's logged model, registered again
    registry.wait_ready("guarded", version)
    registry.set_tags("guarded", version, {Tag.PASSED_EVALUATION: "true", Tag.FORCED: "true", Tag.DECISION: Decision.DRY_RUN})
    yield spec_path, registry, str(version), champion.version
    if registry.champion("guarded").version != champion.version:
        registry.rollback("guarded", champion.version, "restore the fixture's champion", "tests")


@pytest.mark.integration
def test_a_version_only_a_forced_dry_run_marked_is_refused_without_force(dry_run_forced_version):
    spec_path, registry, version, champion = dry_run_forced_version
    before = registry_snapshot(registry, "guarded")
    started = time.monotonic()
    states = run_rollback(spec_path.parent, model_name="guarded", target_version=int(version), reason="try the dry run")
    assert states == {"rollback": "failed"} and time.monotonic() - started < 120
    assert registry_snapshot(registry, "guarded") == before
    assert registry.aliases("guarded")[CHAMPION_ALIAS] == champion


@pytest.mark.integration
def test_force_rolls_back_to_it_and_says_so_on_the_version(dry_run_forced_version):
    spec_path, registry, version, champion = dry_run_forced_version
    states = run_rollback(spec_path.parent, model_name="guarded", target_version=int(version),
                          reason="the new one is broken", force=True)  # fmt: skip
    assert states == {"rollback": "success"}
    assert registry.aliases("guarded") == {"champion": version, "previous": champion}
    assert registry.version("guarded", version).tags[Tag.ROLLBACK_FORCED] == "true"


@pytest.mark.integration
def test_a_version_that_does_not_exist_fails_at_once(guarded_model):
    spec_path, registry = guarded_model
    before = registry_snapshot(registry, "guarded")
    started = time.monotonic()
    states = run_rollback(spec_path.parent, model_name="guarded", target_version=999, reason="no such version")
    assert states == {"rollback": "failed"}
    assert time.monotonic() - started < 120, "refused at once, not retried after retry_delay (5 minutes)"
    assert registry_snapshot(registry, "guarded") == before
