"""The README's first command, as a user runs it: the demo plays the whole loop and every step ends as its story
says (a demo that fails quietly, e.g. every night refused by a data rule, would otherwise go unseen)."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.support import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_demo_plays_the_loop_as_its_story_says():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "RETRAIN_", "MLFLOW_"))}
    out = subprocess.run(["bash", "scripts/demo.sh"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    story = out.stdout
    expected = [
        r"night 1: .*\n(.*\n)*?   decision: PROMOTE v1 \(champion at evaluation: none\)",
        r"night 2: .*\n(.*\n)*?   decision: DECLINE v2 \(champion at evaluation: v1\)",
        r"night 3: .*\n(.*\n)*?   FAILED: validate_data=failed",
        r"2025-06-08: .*\n(.*\n)*?   verdict: quiet:",
        r"2025-06-11: .*\n(.*\n)*?   verdict: live neg_log_loss breached",
        r"run type asset_triggered, trigger: monitoring(.*\n)*?   decision: PROMOTE v3 \(champion at evaluation: v1\)",
        r"scored 2025-06-10 with v3: wrote \d+ predictions, replacing v1's",
        r"churn: 2 champion moves",
    ]
    for pattern in expected:
        assert re.search(pattern, story), f"the demo's story lacks {pattern!r}:\n{story[-4000:]}"
