"""Airflow operators that adapt Airflow's context (dates, params, connections) to the `retrain` package.

Modules here import only Airflow's SDK at top level; pandas, scikit-learn, MLflow and GX are
imported inside `execute`, so parsing a DAG file stays cheap.
"""
