"""The dataset schema the training job logs is the one MLflow would infer, without visiting every value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow.types.utils import _infer_schema

from retrain.registry.tracking import dataset_schema


def _frame(with_missing: bool) -> pd.DataFrame:
    rows = 6
    gap = [0] if with_missing else []

    def missing(values: list) -> list:
        return [None if i in gap else v for i, v in enumerate(values)]

    return pd.DataFrame(
        {
            "float64": pd.Series(missing([1.5, 2.0, 3.0, 4.0, 5.0, 6.0]), dtype="float64"),
            "float32": pd.Series(missing([1.5, 2.0, 3.0, 4.0, 5.0, 6.0]), dtype="float32"),
            "int64": np.arange(rows, dtype="int64"),
            "int32": np.arange(rows, dtype="int32"),
            "bool": [True, False] * 3,
            "nullable_int": pd.Series(missing(list(range(rows))), dtype="Int64"),
            "str": pd.Series(missing(list("abcdef")), dtype="str"),
            "string_python": pd.Series(missing(list("abcdef")), dtype="string[python]"),
            "object_text": pd.Series(missing(list("abcdef")), dtype=object),
            "category": pd.Categorical(missing(list("aabbcc"))),
            "timestamp": pd.Series(
                missing(list(pd.date_range("2025-01-01", periods=rows, tz="UTC"))), dtype="datetime64[us, UTC]"
            ),
            "naive_timestamp": pd.Series(
                missing(list(pd.date_range("2025-01-01", periods=rows))), dtype="datetime64[ns]"
            ),
        }
    )


@pytest.mark.parametrize("with_missing", [False, True])
def test_the_declared_schema_equals_mlflows_inference(with_missing):
    frame = _frame(with_missing)
    declared = dataset_schema(frame)
    with pytest.warns(UserWarning, match="integer column"):  # MLflow's hint; the declared schema has no opinion
        inferred = _infer_schema(frame)
    assert declared.to_dict() == inferred.to_dict()
    assert [c["required"] for c in declared.to_dict()] == [not with_missing or c in ("int64", "int32", "bool")
                                                           for c in frame.columns]  # fmt: skip


def test_a_float_column_with_nan_in_the_middle_is_optional():
    frame = pd.DataFrame({"x": [1.0] * 1000 + [np.nan] + [2.0] * 1000})
    assert dataset_schema(frame).to_dict() == _infer_schema(frame).to_dict()
    assert dataset_schema(frame).to_dict()[0]["required"] is False
