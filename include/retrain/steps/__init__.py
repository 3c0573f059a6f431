"""The work of each step of the retraining pipeline (retrain.pipeline), without Airflow.

Each module has `run(ctx: StepContext) -> <its output>`: it reads what it needs through the context
(the spec, the run, earlier steps' outputs, the registry), writes its reports, and returns its
output, raises `StepSkipped` to end the run early on purpose, or raises a `RetrainError` carrying
its output (a gate that failed records its verdict first).
"""
