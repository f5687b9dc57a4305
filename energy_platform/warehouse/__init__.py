"""The DuckDB warehouse: schema, short-lived connections, idempotent partition writes."""
