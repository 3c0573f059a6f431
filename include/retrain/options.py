"""What one run was asked to do: the trigger form's options, its window and its identity, parsed once.

`RunOptions` is the trigger form. Each field is one Param of the DAG (title, description and JSON
Schema live next to the field), so adding a form value touches this class and the code that uses
it, nothing else: the DAG factory builds the Params from these fields, every task parses them into
`Run` at its start, and the training job receives the whole `Run` as JSON.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from retrain.assets import data_asset, model_asset, request_asset
from retrain.errors import FormValueError
from retrain.estimator_params import format_problems, import_estimator, param_problems, signature_problems
from retrain.window import Window

if TYPE_CHECKING:
    from retrain.spec import EstimatorSpec

# The Params declare JSON Schema draft 7: Airflow checks every Param's schema against its dialect's
# meta-schema per DAG, and draft 7's is checked in 40% of the time of the default 2020-12
# (benchmarks/README.md). The form uses nothing newer.
SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"


# Which DAGs show a form field: the retraining DAG, or the scoring and monitoring DAGs (which run for a day).
RETRAIN_FORM = "retrain"
DAY_FORM = "day"


def _option(default: Any, title: str, description: str, form: str = RETRAIN_FORM, **schema: Any) -> Any:
    """A form field: its default, the form it belongs to, and the title, description and JSON Schema the Param
    shows.

    The description may name spec values as {lookback_days}, {holdout_days} or {estimator}.
    """
    meta = {"title": title, "description": description, "schema": schema, "form_default": default, "form": form}
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
    date: dt.date | None = _option(
        None,
        "Day",
        "The day (UTC) this run scores or monitors. Empty: the day before the run's time, or before the window end a"
        " triggering event gives (a promotion gives its window's end).",
        form=DAY_FORM,
        type=["null", "string"],
        format="date",
    )

    @classmethod
    def parse(cls, values: Mapping[str, Any]) -> RunOptions:
        """The options from the form's (or a conf's) values; unknown keys are ignored, bad values named."""
        parsed: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if values.get(f.name) is None:
                continue
            value = values[f.name]
            if f.name in ("end_date", "date"):
                parsed[f.name] = _date(value, f.name)
            elif isinstance(f.metadata["form_default"], bool):
                if not isinstance(value, bool):
                    raise FormValueError(f"param '{f.name}' must be true or false, got {value!r}")
                parsed[f.name] = value
            elif isinstance(f.metadata["form_default"], dict):
                if not isinstance(value, Mapping):
                    raise FormValueError(f"param '{f.name}' must be a JSON object, got {value!r}")
                parsed[f.name] = dict(value)
        return cls(**parsed)

    def to_dict(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "end_date": None if self.end_date is None else self.end_date.isoformat(),
            "estimator_params": dict(self.estimator_params),
            "date": None if self.date is None else self.date.isoformat(),
        }


def form_fields(form: str = RETRAIN_FORM) -> list[dataclasses.Field]:
    """The fields of a DAG's trigger form (the retraining form, or the day form of scoring and monitoring)."""
    return [f for f in dataclasses.fields(RunOptions) if f.metadata["form"] == form]


def _date(value: Any, name: str = "end_date") -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.datetime.fromisoformat(str(value)).date()
    except ValueError:
        raise FormValueError(f"param {name!r}: {str(value)[:40]!r} is not an ISO date (YYYY-MM-DD)") from None


# An asset event's `extra` comes from whoever may post events: bounded, and only what we read from it.
MAX_REASON_CHARS = 500


@dataclass(frozen=True)
class AssetEvent:
    """One asset event that triggered a run, as plain values (untrusted: anyone allowed to post events)."""

    asset: str
    extra: Mapping[str, Any] = field(default_factory=dict)
    timestamp: str | None = None


@dataclass(frozen=True)
class Trigger:
    """Why a run started: `schedule` (the cron, or a backfill of it), `manual` (the UI form or the REST API),
    `data` (an event on the model's data asset), `monitoring` (the monitor asked for retraining) or, for
    scoring, `promotion` (a new champion), and the reason an asset event gave, in words."""

    kind: Literal["schedule", "manual", "data", "monitoring", "promotion"]
    reason: str = ""

    def describe(self) -> str:
        return f"{self.kind}: {self.reason}" if self.reason else self.kind


def trigger_of(model: str, run_type: str, events: Sequence[AssetEvent] = ()) -> Trigger:
    """The trigger of a run of `model`'s retraining DAG from Airflow's run type and its triggering events.

    A monitoring request wins over a data event when one run consumed both; the reasons of the events of
    that kind are joined.
    """
    if run_type in ("scheduled", "backfill"):
        return Trigger("schedule")
    if run_type != "asset_triggered":
        return Trigger("manual")
    kinds = (("monitoring", request_asset(model)), ("data", data_asset(model)), ("promotion", model_asset(model)))
    for kind, name in kinds:
        chosen = [event for event in events if event.asset == name]
        if chosen:
            reasons = dict.fromkeys(_text(event.extra.get("reason")) for event in chosen)
            return Trigger(kind, "; ".join(r for r in reasons if r)[:MAX_REASON_CHARS])  # type: ignore[arg-type]
    return Trigger("data")


def _text(value: Any) -> str:
    """Free text from an event, on one line, without control characters, bounded."""
    if not isinstance(value, str):
        return ""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", value).strip()[:MAX_REASON_CHARS]


def event_end_date(events: Sequence[AssetEvent]) -> dt.date | None:
    """The latest `end_date` the triggering events carry (as the trigger form's `end_date`), if any."""
    dates = []
    for event in events:
        value = event.extra.get("end_date")
        if value is not None:
            try:
                dates.append(_date(value))
            except ValueError:
                raise ValueError(
                    f"asset event on {event.asset!r}: extra 'end_date' {str(value)[:40]!r} is not an ISO date (YYYY-MM-DD)"
                ) from None
    return max(dates, default=None)


@dataclass(frozen=True)
class Run:
    """One DAG run as every step sees it: who it is, why it started, what it was asked, which window it reads."""

    dag_id: str
    run_id: str
    options: RunOptions
    window: Window
    user: str | None = None
    trigger: Trigger = Trigger("manual")

    @property
    def day(self) -> dt.date:
        """The day a scoring or monitoring run works on: the last whole day before the window's end."""
        return self.window.end_date - dt.timedelta(days=1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "options": self.options.to_dict(),
            "window": self.window.to_dict(),
            "user": self.user,
            "trigger": {"kind": self.trigger.kind, "reason": self.trigger.reason},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Run:
        trigger = data.get("trigger") or {}
        return cls(
            dag_id=data["dag_id"],
            run_id=data["run_id"],
            options=RunOptions.parse(data.get("options") or {}),
            window=Window.from_dict(data["window"]),
            user=data.get("user"),
            trigger=Trigger(trigger.get("kind", "manual"), trigger.get("reason", "")),
        )


def resolve_run(
    spec,
    *,
    run_id: str,
    params: Mapping[str, Any],
    conf: Mapping[str, Any],
    interval_end: dt.datetime | None,
    run_after: dt.datetime,
    run_type: str = "manual",
    events: Sequence[AssetEvent] = (),
    user: str | None = None,
    dag_id: str | None = None,
) -> Run:
    """The run's trigger, options and window.

    The window ends at the form's (or the conf's) `end_date` (for the day form: the day after `date`); else at
    the latest `end_date` the triggering asset events carry; else at the scheduled run's data interval end; a
    manual or asset-triggered run in Airflow 3 may have none of these (no logical date), and then it ends at
    the trigger time. The form's estimator_params are checked against the spec's model here, when the run
    starts (FormValueError).
    """
    options = RunOptions.parse({**conf, **{k: v for k, v in params.items() if v is not None}})
    check_estimator_params(spec.model, options.estimator_params)
    day_end = None if options.date is None else options.date + dt.timedelta(days=1)
    end = options.end_date or day_end or event_end_date(events) or interval_end or run_after
    return Run(
        dag_id=dag_id or spec.dag_id,
        run_id=run_id,
        options=options,
        window=Window.ending(end, spec.data),
        user=user,
        trigger=trigger_of(spec.name, run_type, events),
    )


def check_estimator_params(model: EstimatorSpec, overrides: Mapping[str, Any]) -> None:
    """Refuses form values for the estimator that the spec could not hold either (unknown parameter, wrong
    type, over a size bound, a path): FormValueError naming each. An estimator outside the scikit-learn
    table is imported to check the names against its signature."""
    if not overrides:
        return
    merged = {**model.params, **overrides}
    problems = [(name, reason) for name, reason in param_problems(model.estimator, merged) if name in overrides]
    if not problems and not model.estimator.startswith("sklearn."):
        problems = signature_problems(import_estimator(model.estimator), overrides)
    if problems:
        raise FormValueError(f"refused before anything ran: {format_problems('param estimator_params', problems)}")
