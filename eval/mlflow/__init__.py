"""Slipway's evaluation in MLflow: runs logged to a tracking server (`tracking`), and the metrics as
MLflow GenAI scorers (`scorers`). Needs the `mlflow` extra (`pip install -e .[mlflow]`); nothing else in
`eval` imports MLflow, so a run without `--mlflow` never pays for it."""
