"""The local training backend: the training command as a child process of the worker. The Kubernetes
backend (pod_train.py) runs the very same command in a pod."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from retrain_operators.base import RetrainOperator, run_from_context, run_step
from retrain_operators.lineage import ReportsLineage

LAST_LINES = 30


class LocalTrainOperator(ReportsLineage, RetrainOperator):
    """Runs `python -m retrain.train ...` locally, streams its log, enforces the timeout, reads its result.

    A non-zero exit, a timeout or a missing result file fails the task with the job's last log lines.
    """

    ui_color = "#d9ead3"

    def execute(self, context: Any) -> dict:
        result = run_step(context, lambda: self._train(context))
        self.keep_result(result)
        return result

    def _train(self, context: Any):
        from retrain.contracts import TrainingResult
        from retrain.errors import TrainingError
        from retrain.invocation import training_invocation
        from retrain.settings import features_dir
        from retrain_operators.hooks import MlflowHook

        run = run_from_context(context, self.spec)
        self.keep_lineage(run, {})
        timeout_s = self.spec.training.timeout_minutes * 60
        with tempfile.TemporaryDirectory(prefix="retrain-xcom-") as tmp:
            result_path = Path(tmp) / "return.json"
            invocation = training_invocation(
                self.spec, run, task_id=self.task_id, features_dir=str(features_dir(self.spec.name, run.window)),
                result_path=str(result_path),
            )  # fmt: skip
            command = invocation.command(python=sys.executable)
            self.log.info(
                "training command: python -m retrain.train (%d arguments), env %s", len(command) - 3, invocation.env
            )
            env = {**os.environ, **MlflowHook().environment(), **invocation.env}
            returncode, last_lines, timed_out = self._run(command, env, timeout_s)
            tail = "\n".join(last_lines)
            if timed_out:
                raise TrainingError(
                    f"training timed out after {timeout_s}s (training.timeout_minutes); last lines:\n{tail}"
                )
            if returncode != 0:
                raise TrainingError(f"training exited with code {returncode}; last lines:\n{tail}")
            if not result_path.exists():
                raise TrainingError(f"training exited 0 but wrote no result file {result_path}; last lines:\n{tail}")
            result = TrainingResult.from_xcom(json.loads(result_path.read_text()))
        self.log.info("trained model %s version %s: %s", self.spec.name, result.model_version, result.metrics)
        return result

    def _run(self, command: list[str], env: dict[str, str], timeout_s: float) -> tuple[int, list[str], bool]:
        from retrain.credentials import environment_secrets, redact

        # The task's supervisor masks what the hook registered; redacting here too keeps the relayed lines and
        # the error's last lines clean where no supervisor runs (dag.test, a bare worker process).
        secrets = environment_secrets(env)
        last_lines: collections.deque[str] = collections.deque(maxlen=LAST_LINES)
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
        )
        self._process = process

        def pump() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                line = redact(line.rstrip("\n"), secrets)
                last_lines.append(line)
                self.log.info("[train] %s", line)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        timed_out = False
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            self._kill(process)
        except BaseException:
            self._kill(process)
            raise
        reader.join(timeout=10)
        return process.returncode, list(last_lines), timed_out

    @staticmethod
    def _kill(process: subprocess.Popen) -> None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()

    def on_kill(self) -> None:
        process = getattr(self, "_process", None)
        if process is not None and process.poll() is None:
            self._kill(process)
