"""Where a nightly run spends its time: py-spy samples two nights of one model at ROWS x 20 (the first
promotes, the second evaluates against that champion), the training subprocess included, and prints
each task's top frames. Usage: python profile_night.py [ROWS, default 1,000,000] [RATE, default 50 Hz] [idle]

Samples are attributed to a task by the step module on their stack (`retrain/steps/<step>.py`) or, for
the training job, by its process; the rest is Airflow's own work (parsing, the in-process supervisor,
XCom, start-up imports). "inclusive" counts a function once per sample it is anywhere on the stack;
"self" only when it is the innermost frame; "calls out of the project" counts the first library frame
under the innermost frame of ours (which library call of ours costs what). Writes
results/profile_night.json and the collapsed stacks beside it (gzipped; flame graph input for
`flamegraph.pl` or speedscope).
"""

from __future__ import annotations

import collections
import gzip
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from common import REPO, RESULTS, python_env, save
from orchestration import DAG, bench_spec, last_json
from wide_data import write

ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
RATE = int(sys.argv[2]) if len(sys.argv) > 2 else 50
IDLE = sys.argv[3:] == ["idle"]  # also sample threads that wait (I/O, locks, sleeps, child processes)
TOP = 8
# The step module on a sample's stack names its task; the training job runs in its own process.
TASK_OF_FILE = {
    "retrain/steps/validate.py": "validate_data",
    "retrain/steps/drift.py": "check_drift",
    "retrain/steps/features.py": "build_features",
    "retrain/train.py": "train",
    "retrain/steps/evaluate.py": "evaluate",
    "retrain/steps/promote.py": "promote",
}
OTHER = "airflow and start-up"
TRAINING_JOB = "-m retrain.train"
FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def short(path: str) -> str:
    """A frame's file from its package folder on: site-packages/, include/, plugins/ are dropped."""
    for marker in ("site-packages/", "/include/", "/plugins/", "/lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


PROCESS = re.compile(r'process (\d+):"(.{0,80}).*?";')


def keep_stacks(raw: Path, kept: Path) -> None:
    """py-spy's collapsed stacks, gzipped, with each process named by the first 80 characters of its command
    line (py-spy repeats the whole line on every stack; the training job's carries the spec as JSON)."""
    text = PROCESS.sub(lambda m: f'process {m[1]}:"{m[2]}...";', raw.read_text())
    kept.write_bytes(gzip.compress(text.encode(), mtime=0))


def is_project(frame: str) -> bool:
    return "(retrain/" in frame or "(retrain_operators/" in frame


def parse(collapsed: Path) -> dict[str, dict]:
    """{task: {"samples", "inclusive", "self", "out": Counter of frames}} from py-spy's collapsed stacks."""
    tasks: dict[str, dict] = {}
    for line in gzip.decompress(collapsed.read_bytes()).decode().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = []
        for raw in stack.split(";"):
            match = FRAME.match(raw.strip())
            if match:  # process and thread lines carry no file
                frames.append(f"{match['function']} ({short(match['file'])})")
        if not frames:
            continue
        # The training job's threads (joblib's, say) may hold no frame of train.py: its process names it.
        in_training_job = any(p.startswith("process ") and TRAINING_JOB in p for p in stack.split(";")[:2])
        task = (
            "train"
            if in_training_job
            else next((t for f in frames for file, t in TASK_OF_FILE.items() if f.endswith(f"({file})")), OTHER)
        )
        entry = tasks.setdefault(
            task, {"samples": 0, **{k: collections.Counter() for k in ("inclusive", "self", "out")}}
        )
        n = int(count)
        entry["samples"] += n
        for frame in dict.fromkeys(frames):
            entry["inclusive"][frame] += n
        entry["self"][frames[-1]] += n
        ours = [i for i, f in enumerate(frames) if is_project(f)]
        if ours and ours[-1] + 1 < len(frames):
            entry["out"][f"{frames[ours[-1]]} -> {frames[ours[-1] + 1]}"] += n
    return tasks


def summary(tasks: dict[str, dict]) -> list[dict]:
    rows = []
    order = [*TASK_OF_FILE.values(), OTHER]
    for task in sorted(tasks, key=lambda t: order.index(t) if t in order else len(order)):
        entry = tasks[task]
        step = [f for f in entry["inclusive"] if is_project(f)]

        def top(counter, frames=None):
            items = [(f, n) for f, n in counter.most_common() if frames is None or f in frames]
            return [{"frame": f, "seconds": round(n / RATE, 2)} for f, n in items[:TOP]]

        rows.append({
            "task": task, "seconds_sampled": round(entry["samples"] / RATE, 2),
            "top_inclusive_in_project": top(entry["inclusive"], set(step)),
            "top_calls_out_of_the_project": top(entry["out"]),
            "top_self": top(entry["self"]),
        })  # fmt: skip
    return rows


def main() -> None:
    from tests.support import MlflowServer

    work = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    server = MlflowServer(work / "mlflow").start()
    env = python_env(
        MLFLOW_TRACKING_URI=server.uri, AIRFLOW_HOME=str(work / "airflow"), RETRAIN_ARTIFACTS_ROOT=str(work / "artifacts"),
        RETRAIN_SPECS_DIR=str(work / "specs"), AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"), GX_ANALYTICS_ENABLED="False",
    )  # fmt: skip
    py_spy = str(Path(sys.executable).parent / "py-spy")
    try:
        airflow = str(Path(sys.executable).parent / "airflow")
        subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
        data_spec = write(ROWS, work / "data", name="benchdata")
        spec = bench_spec(data_spec, work, "profiled")
        night_script = work / "night.py"  # a file, not `-c`: py-spy names the process by its command line
        night_script.write_text(DAG)
        rows = []
        for night, day in (("first night", "2025-05-01"), ("second night", "2025-05-02")):
            raw = work / "stacks.txt"
            collapsed = RESULTS / f"profile_night_{night.split()[0]}{'_idle' if IDLE else ''}.collapsed.txt.gz"
            RESULTS.mkdir(exist_ok=True)
            command = [py_spy, "record", "--subprocesses", "--format", "raw", "--rate", str(RATE), "--nonblocking", *(["--idle"] if IDLE else []),
                       "-o", str(raw), "--", sys.executable, str(night_script), str(spec), str(work / "out"), day]  # fmt: skip
            out = subprocess.run(command, env=env, capture_output=True, text=True, cwd=REPO)
            if out.returncode != 0:
                raise RuntimeError(f"{night} failed:\n{out.stderr[-4000:]}")
            keep_stacks(raw, collapsed)
            measured = last_json(out.stdout)
            for row in summary(parse(collapsed)):
                rows.append({"night": night, "rows": ROWS, "task_seconds": measured.get(row["task"]), **row})
        for row in rows:
            print(
                f"\n## {row['night']}: {row['task']} ({row['task_seconds']} s measured, {row['seconds_sampled']} s sampled)"
            )
            for kind in ("top_self", "top_inclusive_in_project", "top_calls_out_of_the_project"):
                print(f"  {kind}:")
                for item in row[kind]:
                    print(f"    {item['seconds']:7.2f} s  {item['frame']}")
        print(
            "wrote",
            save(
                f"profile_night{'_idle' if IDLE else ''}",
                rows,
                notes=f"py-spy {RATE} Hz, --subprocesses, nonblocking{', idle' if IDLE else ''}",
            ),
        )
    finally:
        server.stop()


if __name__ == "__main__":
    os.chdir(REPO)
    main()
