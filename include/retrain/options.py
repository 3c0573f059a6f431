"""What one run was asked to do: the trigger form's options, its window and its identity, parsed once.

`RunOptions` is the trigger form. Each field is one Param of the DAG (title, description and JSON
Schema live next to the field), so adding a form value touches this class and the code that uses
it, nothing else: the DAG factory builds the Params from these fields, every task parses them into
`Run` at its start, and the training job receives the whole `Run` as JSON.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from retrain.window import Window

# The Params declare JSON Schema draft 7: Airflow checks every Param's schema against its dialect's
# meta-schema per DAG, and draft 7's is checked in 40% of the time of the default 2020-12
# (benchmarks/README.md). The form uses nothing newer.
SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"


def _option(default: Any, title: str, description: str, **schema: Any) -> Any:
    """A form field: its default, and the title, description and JSON Schema the Param shows.

    The description may name spec values as {lookback_days}, {holdout_days} or {estimator}.
    """
    meta = {"title": title, "description": description, "schema": schema, "form_default": default}
    if isinstance(default, dict):
        return field(default_factory=dict, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class RunOptions:
    """The trigger form's values, checked."""

    end_date: dt.date | None = _option(
        None,
        "Window end date",
        "Last day (exclusive) of the data window; the window is the {lookback_days} days before it and its last"
        " {holdout_days} days are the holdout. Empty: the run's data interval end, or the trigger time for a"
        " manual run.",
        type=["null", "string"],
        format="date",
    )
    force: bool = _option(
        False, "Retrain without drift", "Train even when the drift policy (retrain: on_drift) finds no drift.",
        type="boolean",
    )  # fmt: skip
    force_promote: bool = _option(
        False,
        "Force promotion",
        "Promote the new model even if it does not beat the champion. The score floor and the baseline check still"
        " apply; the promotion is recorded as forced.",
        type="boolean",
    )
    dry_run: bool = _option(
        False, "Dry run", "Train and evaluate, record the decision, but never move the champion alias.",
        type="boolean",
    )  # fmt: skip
    estimator_params: Mapping[str, Any] = _option(
        {},
        "Estimator parameter overrides",
        'JSON object merged over the spec\'s model.params for {estimator}, e.g. {{"max_iter": 300}}.',
        type="object",
    )

    @classmethod
    def parse(cls, values: Mapping[str, Any]) -> RunOptions:
        """The options from the form's (or a conf's) values; unknown keys are ignored, bad values named."""
        parsed: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if values.get(f.name) is None:
                continue
            value = values[f.name]
            if f.name == "end_date":
                parsed[f.name] = _date(value)
            elif isinstance(f.metadata["form_default"], bool):
                if not isinstance(value, bool):
                    raise ValueError(f"param '{f.name}' must be true or false, got {value!r}")
                parsed[f.name] = value
            elif isinstance(f.metadata["form_default"], dict):
                if not isinstance(value, Mapping):
                    raise ValueError(f"param '{f.name}' must be a JSON object, got {value!r}")
                parsed[f.name] = dict(value)
        return cls(**parsed)

    def to_dict(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "end_date": None if self.end_date is None else self.end_date.isoformat(),
            "estimator_params": dict(self.estimator_params),
        }


def form_fields() -> list[dataclasses.Field]:
    """The trigger form's fields, in the form's order."""
    return list(dataclasses.fields(RunOptions))


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.datetime.fromisoformat(str(value)).date()
    except ValueError:
        raise ValueError(f"param 'end_date': {value!r} is not an ISO date (YYYY-MM-DD)") from None


@dataclass(frozen=True)
class Run:
    """One DAG run as every step sees it: who it is, what it was asked, which window it reads."""

    dag_id: str
    run_id: str
    options: RunOptions
    window: Window
    user: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "options": self.options.to_dict(),
            "window": self.window.to_dict(),
            "user": self.user,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Run:
        return cls(
            dag_id=data["dag_id"],
            run_id=data["run_id"],
            options=RunOptions.parse(data.get("options") or {}),
            window=Window.from_dict(data["window"]),
            user=data.get("user"),
        )


def resolve_run(
    spec_data,
    *,
    dag_id: str,
    run_id: str,
    params: Mapping[str, Any],
    conf: Mapping[str, Any],
    interval_end: dt.datetime | None,
    run_after: dt.datetime,
    user: str | None = None,
) -> Run:
    """The run's options and window.

    The window ends at the form's (or the conf's) `end_date`; without one, at the scheduled run's data
    interval end; a manual run in Airflow 3 may have neither (no logical date), and then it ends at the
    trigger time. `spec_data` is the spec's `data` section (lookback and holdout).
    """
    options = RunOptions.parse({**conf, **{k: v for k, v in params.items() if v is not None}})
    end = options.end_date or interval_end or run_after
    return Run(dag_id=dag_id, run_id=run_id, options=options, window=Window.ending(end, spec_data), user=user)
