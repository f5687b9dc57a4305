-- UNTESTED (docker-compose.yml): the MLflow database and the DuckLake catalog beside Dagster's.
CREATE DATABASE mlflow;
CREATE DATABASE lake;
