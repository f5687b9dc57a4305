-- UNTESTED (docker-compose.yml): the MLflow database beside Dagster's.
CREATE DATABASE mlflow;
