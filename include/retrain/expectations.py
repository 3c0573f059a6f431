"""Great Expectations expectations this package adds to GX's own, for what GX cannot say on pandas.

- `expect_column_values_to_be_finite`: no `inf` or `-inf` (NaN is the not-null rules' business). GX has
  no such expectation; its between check at the float limits does it as a map expectation, 10 times the
  cost of this one count on 1M rows, and min/max checks at those limits also fail an all-null column.
- `expect_column_values_to_be_class_labels`: values a classifier takes as class labels (strings,
  booleans, integers, integral floats). GX's type-list check matches neither pandas' `str` nor its
  `category` dtype, so it cannot express "any label type".
- `expect_compound_columns_to_not_repeat`: rows that repeat an earlier row in every listed column.
  GX's `expect_compound_columns_to_be_unique` counts every row of a duplicated group (both copies of a
  pair), not the extra copies, and sorts the whole frame: about 8 times slower on 1M x 20.

Importing this module registers them (GX registers an expectation class when it is defined); users
can name them in a spec or a suite file like GX's own. Imports GX: import it only where GX runs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from great_expectations.execution_engine import PandasExecutionEngine
from great_expectations.expectations.expectation import (
    ColumnAggregateExpectation,
    ColumnMapExpectation,
    MulticolumnMapExpectation,
)
from great_expectations.expectations.metrics import ColumnMapMetricProvider, column_condition_partial
from great_expectations.expectations.metrics.column_aggregate_metric_provider import (
    ColumnAggregateMetricProvider,
    column_aggregate_value,
)
from great_expectations.expectations.metrics.map_metric_provider import (
    MulticolumnMapMetricProvider,
    multicolumn_condition_partial,
)

_LABEL_SCALARS = (str, bool, int, np.bool_, np.integer, np.str_)


class ColumnInfiniteCount(ColumnAggregateMetricProvider):
    """How many values of a numeric column are inf or -inf (a non-numeric column cannot be evaluated)."""

    metric_name = "column.retrain_infinite_count"
    value_keys = ()

    @column_aggregate_value(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs) -> int:
        return int(np.isinf(column.to_numpy(dtype=float, na_value=np.nan)).sum())


class ExpectColumnValuesToBeFinite(ColumnAggregateExpectation):
    """Expect no value of the column to be inf or -inf; missing values pass (the not-null rules judge them)."""

    metric_dependencies = ("column.retrain_infinite_count",)
    success_keys = ()

    def _validate(self, metrics: dict, runtime_configuration: dict | None = None, execution_engine=None) -> dict:
        infinite = metrics["column.retrain_infinite_count"]
        return {"success": infinite == 0, "result": {"observed_value": {"infinite_values": infinite}}}


def class_label_mask(values: pd.Series) -> pd.Series:
    """True where a (non-null) value can be a class label: a string, a boolean, an integer or an integral float."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = class_label_mask(pd.Series(dtype.categories))
        return pd.Series(categories.to_numpy()[values.cat.codes.to_numpy()], index=values.index)
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype) or isinstance(dtype, pd.StringDtype):
        return pd.Series(True, index=values.index)
    if pd.api.types.is_float_dtype(dtype):
        numbers = values.to_numpy(dtype=float)
        return pd.Series(np.isfinite(numbers) & (numbers == np.floor(numbers)), index=values.index)
    if pd.api.types.is_object_dtype(dtype):  # a Python object per value already: one isinstance each
        return values.map(_is_label_scalar).astype(bool)
    return pd.Series(False, index=values.index)  # datetimes, durations, intervals: not class labels


def _is_label_scalar(value) -> bool:
    if isinstance(value, _LABEL_SCALARS):
        return True
    return isinstance(value, float | np.floating) and bool(np.isfinite(value)) and float(value).is_integer()


class ColumnValuesAreClassLabels(ColumnMapMetricProvider):
    """The map metric behind expect_column_values_to_be_class_labels (nulls are left to the not-null rule)."""

    condition_metric_name = "column_values.retrain_class_label"

    @column_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column: pd.Series, **kwargs) -> pd.Series:
        return class_label_mask(column)


class ExpectColumnValuesToBeClassLabels(ColumnMapExpectation):
    """Expect each value to be a class label: a string, a boolean, an integer or an integral float."""

    map_metric = "column_values.retrain_class_label"
    success_keys = ("mostly",)


def repeated_rows(frame: pd.DataFrame) -> np.ndarray:
    """True for each row equal in every column to an earlier row (NaN equals NaN), exactly.

    Rows are hashed (64 bits) first; only rows whose hash repeats are compared value by value, so a
    hash collision cannot count as a duplicate, and the full comparison runs on the few candidates.
    """
    hashes = pd.Series(pd.util.hash_pandas_object(frame, index=False).to_numpy())
    candidates = hashes.duplicated(keep=False).to_numpy()
    repeated = np.zeros(len(frame), dtype=bool)
    if candidates.any():
        repeated[candidates] = frame.loc[candidates].duplicated(keep="first").to_numpy()
    return repeated


_MULTICOLUMN_DOMAIN = ("batch_id", "table", "column_list", "row_condition", "condition_parser", "ignore_row_if")


class CompoundColumnsNotRepeated(MulticolumnMapMetricProvider):
    """The map metric behind expect_compound_columns_to_not_repeat."""

    condition_metric_name = "compound_columns.retrain_not_repeated"
    condition_domain_keys = _MULTICOLUMN_DOMAIN

    @multicolumn_condition_partial(engine=PandasExecutionEngine)
    def _pandas(cls, column_list: pd.DataFrame, **kwargs) -> pd.Series:
        return pd.Series(~repeated_rows(column_list), index=column_list.index)


class ExpectCompoundColumnsToNotRepeat(MulticolumnMapExpectation):
    """Expect no row to repeat an earlier row in every listed column; `mostly` tolerates a fraction."""

    map_metric = "compound_columns.retrain_not_repeated"
    success_keys = ("mostly",)
    domain_keys = _MULTICOLUMN_DOMAIN
