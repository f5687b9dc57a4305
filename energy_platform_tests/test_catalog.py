"""The Dagster catalog: every asset has an owner, and a table's column schema is the table's."""

import dagster as dg

from energy_platform.defs.catalog import CATALOG
from energy_platform.warehouse.db import connect
from energy_platform_tests.platform_env import make_env


def test_every_asset_has_an_owner_and_written_tables_their_real_columns(tmp_path):
    env = make_env(tmp_path)
    with connect(env.warehouse) as conn:  # a write connection creates the warehouse schema
        real = {}
        for table, column, dtype in conn.execute(
            "SELECT schema_name || '.' || table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = current_database() ORDER BY column_index"
        ).fetchall():
            real.setdefault(table, []).append((column, dtype))
    specs = {spec.key.to_user_string(): spec for a in env.defs.assets for spec in a.specs}
    assert set(specs) == set(CATALOG)
    tables = 0
    for name, spec in specs.items():
        assert spec.owners and all(o.startswith("team:") for o in spec.owners), name
        schema = spec.metadata.get("dagster/column_schema")
        table = CATALOG[name][1]
        if table is None:
            assert schema is None
            continue
        tables += 1
        assert isinstance(schema, dg.TableSchema)
        assert [(c.name, c.type) for c in schema.columns] == real[table], name
        assert spec.metadata["dagster/table_name"] == table
    assert tables >= 6
    columns = specs["predictions"].metadata["dagster/column_schema"].columns
    assert sum(bool(c.description) for c in columns) >= len(columns) // 2  # the analysts' docs reach the catalog
