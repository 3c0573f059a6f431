"""The validation suite run by Great Expectations inside the database, over the run's window.

The batch is a SQLAlchemy SELECT of the window with its bounds as bind parameters; GX composes every
metric as SQL over it (counts, null and set checks, min/max, the failing values' first examples), on the
source's own read-only engine. No row crosses to the worker except those few examples. The suite is the
default one and the spec's, as for files, with one change: a column's type is the database's, so the
"numeric feature is numeric" rule asks the database's type, or, for numbers held as text, that every
value reads as a number (which names the values that do not).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from retrain.sources.sql import NUMBER, TEXT, TIME, SqlSource
from retrain.validation import (
    MAX_EXAMPLES,
    NUMERIC_TYPES,
    ExpectationDef,
    ExpectationResult,
    ValidationOutcome,
    _empty_window_result,
    _expectation,
    _quiet_gx,
    _result,
    suite_definitions,
)

if TYPE_CHECKING:
    from retrain.sources.sql import Column
    from retrain.window import Window

# What a number held as text looks like (what pandas.to_numeric reads, less hexadecimal and the like).
NUMBER_AS_TEXT = r"^\s*[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$"
# How the report states the numeric rule for a database: a type its driver reports as a number.
SQL_NUMBER_KINDS = ["any number type (the driver's NUMBER)"]


def _numeric_rule(definition: ExpectationDef) -> bool:
    return (
        definition.type == "expect_column_values_to_be_in_type_list"
        and definition.kwargs.get("type_list") == NUMERIC_TYPES
    )


def _as_text_rule(definition: ExpectationDef, column: Column) -> ExpectationDef:
    """Numbers held as text, as in a CSV file: the rule becomes "each value reads as a number"."""
    return dataclasses.replace(
        definition,
        type="expect_column_values_to_match_regex",
        kwargs={"column": column.name, "regex": NUMBER_AS_TEXT},
        source=f"{definition.source} (column {column.name!r} is {column.type_name}: its values must be numbers)",
    )


def _type_result(definition: ExpectationDef, column: Column) -> ExpectationResult:
    """The numeric rule answered from the type the database reports for the column."""
    return ExpectationResult(
        type=definition.type, column=column.name, kwargs={"column": column.name, "type_list": SQL_NUMBER_KINDS},
        severity=definition.severity, source=definition.source, success=column.kind == NUMBER, errored=False,
        observed=column.type_name,
    )  # fmt: skip


# This package's own expectations (retrain.expectations) are implemented for pandas: on a database, the same
# rules are answered by one aggregate query of the window.
FINITE, CLASS_LABELS, NOT_REPEATED = (
    "expect_column_values_to_be_finite",
    "expect_column_values_to_be_class_labels",
    "expect_compound_columns_to_not_repeat",
)
FLOAT_TYPES = {"float4", "float8", "numeric"}


def _pandas_only_rules(
    source: SqlSource, window: Window, definitions: list[ExpectationDef]
) -> dict[int, ExpectationResult]:
    """The package's pandas-only expectations, answered from counts the database makes over the window."""
    import sqlalchemy as sa

    rows = source.window_select(window, untimed=True).subquery()
    wanted = [(i, d) for i, d in enumerate(definitions) if d.type in (FINITE, CLASS_LABELS, NOT_REPEATED)]
    expressions: dict[int, list] = {}
    for index, definition in wanted:
        if definition.type == NOT_REPEATED:
            columns = [rows.c[name] for name in definition.kwargs["column_list"]]
            expressions[index] = [sa.func.count(), sa.func.count() - sa.func.count(sa.distinct(sa.tuple_(*columns)))]
            continue
        column = source.columns[definition.kwargs["column"]]
        value = sa.cast(rows.c[column.name], sa.Double)
        if column.kind == NUMBER and definition.type == FINITE:
            infinite = value.in_([sa.literal(float("inf"), sa.Double), sa.literal(float("-inf"), sa.Double)])
            expressions[index] = [sa.func.count().filter(infinite)]
        elif definition.type == CLASS_LABELS:  # integral numbers, text, booleans; a float must be integral
            present = sa.func.count(rows.c[column.name])
            if column.kind == NUMBER and column.type_name in FLOAT_TYPES:
                unexpected = sa.func.count().filter(value != sa.func.trunc(value))
            else:
                unexpected = present if column.kind == TIME else sa.literal(0)
            expressions[index] = [present, unexpected]
    values: list = []
    if expressions:
        select = sa.select(*[e for group in expressions.values() for e in group])
        with source.errors(), source.engine.connect() as connection:
            values = list(connection.execute(select).one())
    answers: dict[int, ExpectationResult] = {}
    for index, definition in wanted:
        counts = [values.pop(0) for _ in expressions.get(index, [])]
        common = {"type": definition.type, "column": definition.kwargs.get("column"), "kwargs": definition.kwargs,
                  "severity": definition.severity, "source": definition.source, "errored": False, "rule": definition.rule}  # fmt: skip
        if definition.type == FINITE:
            infinite = counts[0] if counts else 0
            answers[index] = ExpectationResult(**common, success=infinite == 0, observed={"infinite_values": infinite})
        elif definition.type == CLASS_LABELS:
            present, unexpected = counts
            mostly = definition.kwargs.get("mostly", 1)
            success = present == 0 or (present - unexpected) / present >= mostly
            answers[index] = ExpectationResult(
                **common, success=success, unexpected_count=unexpected, element_count=present
            )
        else:
            total, repeated = counts
            mostly = definition.kwargs.get("mostly", 1)
            success = total == 0 or (total - repeated) / total >= mostly
            answers[index] = ExpectationResult(
                **common, success=success, unexpected_count=repeated, element_count=total
            )
    return answers


def validate_in_database(source: SqlSource, window: Window) -> ValidationOutcome:
    """The suite's outcome on the window, computed by the database: the same outcome, report and failure
    message as `validate_frame` gives for the same rows in files."""
    spec = source.spec
    source.require(spec.input_columns)  # a missing column is a DataError naming it, as a file's is
    definitions = suite_definitions(spec, window)
    answered: dict[int, ExpectationResult] = {}
    for index, definition in enumerate(definitions):
        column = source.columns.get(definition.kwargs.get("column", ""))
        if _numeric_rule(definition) and column is not None:
            if column.kind == TEXT:
                definitions[index] = _as_text_rule(definition, column)
            else:
                answered[index] = _type_result(definition, column)
    answered |= _pandas_only_rules(source, window, definitions)
    # One scan before GX: it runs the window's statement whole, so a refused query or a lost database is an
    # error here (GX would record either as an errored expectation), and an empty window is known.
    rows = source.count(window, untimed=True)
    _quiet_gx()
    import great_expectations as gx
    from great_expectations.core.batch import Batch, LegacyBatchDefinition
    from great_expectations.core.id_dict import IDDict
    from great_expectations.execution_engine import SqlAlchemyExecutionEngine
    from great_expectations.execution_engine.sqlalchemy_batch_data import SqlAlchemyBatchData
    from great_expectations.validator.validator import Validator

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    suite = gx.ExpectationSuite(name=f"{spec.name}_suite")
    for index, definition in enumerate(definitions):
        if index not in answered:
            suite.add_expectation(_expectation(definition, index))
    # GX's own SQL path, on our engine and our SELECT: a query asset would take only text (the bounds
    # rendered as literals) and a connection string (the credentials handed to GX).
    engine = SqlAlchemyExecutionEngine(engine=source.engine, create_temp_table=False)
    selectable = source.window_select(window, untimed=True)
    batch_data = SqlAlchemyBatchData(engine, selectable=selectable, create_temp_table=False, **source.described_to_gx())
    batch = Batch(
        data=batch_data,
        batch_definition=LegacyBatchDefinition(
            datasource_name=spec.data.conn_id or "database",
            data_connector_name="window",
            data_asset_name=spec.data.table or "query",
            batch_identifiers=IDDict({"start": window.start.isoformat(), "end": window.end.isoformat()}),
        ),
    )
    validator = Validator(execution_engine=engine, batches=[batch], data_context=context)
    result_format = {"result_format": "SUMMARY", "partial_unexpected_count": MAX_EXAMPLES}
    with source.errors():
        configurations = validator.process_expectations_for_validation(suite.expectation_configurations)
        raw = validator.graph_validate(
            configurations=configurations, runtime_configuration={"result_format": result_format}
        )
    by_index = {int((r.expectation_config.meta or {})["index"]): r for r in raw}
    results = tuple(
        answered[index] if index in answered else _result(definitions[index], by_index[index].to_json_dict())
        for index in range(len(definitions))
    )
    if any(r.errored for r in results):
        source.ping()  # GX records a lost connection as an errored expectation: that is transient, not a verdict
    if rows == 0:  # as for files: on no rows, the row count rule is the whole story
        results = tuple(_empty_window_result(d, spec) for d in definitions)
        return ValidationOutcome(spec.name, str(window), 0, False, results)
    success = all(r.success for r in results if r.severity == "fail")
    return ValidationOutcome(spec.name, str(window), rows, success, results)
