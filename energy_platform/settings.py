"""Every path and switch of the platform, read from the environment once.

`ENERGY_PLATFORM_HOME` holds all state; `DAGSTER_HOME` defaults to a folder inside it that
carries the project's `dagster.yaml`, so runs persist and the UI shows them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from energy_platform.errors import SettingError
from energy_platform.profile import (
    DAGSTER_PG_ENV,
    WAREHOUSE_DATA_ENV,
    WAREHOUSE_ENV,
    dagster_pg_url,
    is_tracking_server,
    tracking_uri,
    warehouse_path,
    write_instance_yaml,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROJECT_DAGSTER_YAML = PROJECT_ROOT / "dagster.yaml"
DEFAULT_MLFLOW_UI = "http://127.0.0.1:5000"
DEFAULT_DAGSTER_UI = "http://127.0.0.1:3000"  # `make ui`'s default
DEFAULT_PRICE_UNIT = "COP/kWh"  # XM's bolsa price; another market's CSV sets its own
DEFAULT_TIMEZONE = "America/Bogota"  # XM's market time; another market's CSV sets its own
DEFAULT_REPORTS_KEEP_DAYS = 30.0  # ~12 MB of HTML a day in reports/ and as much in MLflow: ~0.7 GB kept


@dataclass(frozen=True)
class Settings:
    home: Path
    source: str
    horizon_days: int
    dagster_home: Path
    xm_base_url: str = "https://servapibi.xm.com.co"
    price_floor: float | None = 0.0  # a csv source's lowest acceptable price; None: no floor
    price_ceiling: float = 1e6  # |price| at or above it is a corrupt cell or a wrong unit (the WARN bound: / 100)
    oni_url: str = "https://www.cpc.ncep.noaa.gov/data/indices/oni.ascii.txt"
    country: str = "CO"  # ENERGY_PLATFORM_COUNTRY: the market's holiday calendar (a `holidays` code, or "none")
    price_unit: str = DEFAULT_PRICE_UNIT  # ENERGY_PLATFORM_PRICE_UNIT: the prices' unit as people read it (EUR/MWh, ...)
    # ENERGY_PLATFORM_TIMEZONE: the market's local time (IANA name), which the hourly timestamps are
    # in: the schedules' mornings and the partitions' days follow it
    timezone: str = DEFAULT_TIMEZONE
    operating_dir: str | None = None  # folder of the operating CSV files; overrides the source's own
    mlflow_uri: str | None = None  # MLFLOW_TRACKING_URI, validated (profile.tracking_uri); None: SQLite in the home
    dagster_pg_url: str | None = None  # ENERGY_PLATFORM_DAGSTER_PG_URL: the Dagster instance in PostgreSQL
    mlflow_ui: str | None = None  # ENERGY_PLATFORM_MLFLOW_UI_URL: where people open the MLflow UI
    dagster_ui: str = DEFAULT_DAGSTER_UI  # ENERGY_PLATFORM_DAGSTER_UI_URL: where MLflow runs link back to their Dagster run
    # ENERGY_PLATFORM_WAREHOUSE: a DuckDB file elsewhere, or a DuckLake location (warehouse.db); None: in the home
    warehouse: Path | str | None = None
    # ENERGY_PLATFORM_REPORTS_KEEP_DAYS: days a drift check's HTML report is kept (monitoring/retention.py); None: for good
    reports_keep_days: float | None = DEFAULT_REPORTS_KEEP_DAYS

    @property
    def warehouse_path(self) -> Path | str:
        """The warehouse's location: a DuckDB file, or a DuckLake catalog (`warehouse.db.is_lake`)."""
        return self.warehouse or self.home / "warehouse.duckdb"

    @property
    def analytics_path(self) -> Path:
        return self.home / "analytics.duckdb"

    @property
    def mlflow_db_path(self) -> Path:
        return self.home / "mlflow.db"

    @property
    def mlflow_tracking_uri(self) -> str:
        return self.mlflow_uri or f"sqlite:///{self.mlflow_db_path}"

    @property
    def mlflow_ui_url(self) -> str:
        """The MLflow UI links point at: the setting, else an http(s) tracking server, else `mlflow ui`'s default."""
        if self.mlflow_ui:
            return self.mlflow_ui.rstrip("/")
        uri = self.mlflow_tracking_uri
        return uri.rstrip("/") if is_tracking_server(uri) else DEFAULT_MLFLOW_UI

    @property
    def mlflow_artifact_root(self) -> Path | None:
        """Where this client puts artifacts; None for a tracking server, whose own store is used."""
        return None if is_tracking_server(self.mlflow_tracking_uri) else self.mlflow_artifacts

    @property
    def mlflow_artifacts(self) -> Path:
        return self.home / "mlartifacts"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    def ensure_dirs(self) -> None:
        for path in (self.home, self.mlflow_artifacts, self.reports_dir, self.dagster_home):
            path.mkdir(parents=True, exist_ok=True)
        write_instance_yaml(self.dagster_home / "dagster.yaml", PROJECT_DAGSTER_YAML, self.dagster_pg_url)
        if not self.dagster_pg_url:  # the race is SQLite's; PostgreSQL migrates in its own transactions
            self._ensure_instance()

    def _ensure_instance(self) -> None:
        """Create the Dagster instance's storage once, holding an `flock` of DAGSTER_HOME.

        Two processes starting on a fresh home (two `demo`s) both created its SQLite tables, and
        one died with "UNIQUE constraint failed: alembic_version". Later starts skip this.
        """
        ready = self.dagster_home / ".instance-created"
        if ready.exists():
            return
        import fcntl

        fd = os.open(self.dagster_home, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if not ready.exists():
                import dagster as dg

                with dg.DagsterInstance.from_config(str(self.dagster_home)):
                    pass
                ready.touch()
        finally:
            os.close(fd)


def _finite(variable: str, text: str, want: str, accept=lambda x: True) -> float:
    """A finite number that `accept`s, else one line naming the variable and what it takes."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and accept(value)):
        raise SettingError(f"{variable} must be {want}, got {text!r}")
    return value


def _price_floor(text: str) -> float | None:
    """`ENERGY_PLATFORM_PRICE_FLOOR`: a number, or `none` for markets with negative prices (nan
    would switch every floor rule off, inf clamp every forecast)."""
    if text.strip().lower() == "none":
        return None
    if not text.strip():  # empty: the default, as every other setting (it read as no floor: helper S, session 21)
        return 0.0
    return _finite("ENERGY_PLATFORM_PRICE_FLOOR", text, "a number or 'none'")


LEASE_ENV = "ENERGY_PLATFORM_RUN_LEASE_SECONDS"
DEFAULT_LEASE_SECONDS = 30.0


def lease_seconds(text: str | None) -> float:
    """`ENERGY_PLATFORM_RUN_LEASE_SECONDS`: a CLI run's lease TTL, >= 1 s (0 spun its heartbeat;
    a word failed the first run with a traceback, after the home was created)."""
    if not text:
        return DEFAULT_LEASE_SECONDS
    return _finite(LEASE_ENV, text, "a number of seconds >= 1", lambda x: x >= 1)


def _reports_keep_days(text: str) -> float | None:
    """`ENERGY_PLATFORM_REPORTS_KEEP_DAYS`: 1 to 36500 days, or `none` to keep every report for good
    (1e12 passed, then every prune failed converting the cutoff for SQLite: helper T, session 21)."""
    if text.strip().lower() == "none":
        return None
    return _finite("ENERGY_PLATFORM_REPORTS_KEEP_DAYS", text, "a number of days from 1 to 36500 or 'none'",
                   lambda x: 1 <= x <= 36500)


def _price_ceiling(text: str) -> float:
    """`ENERGY_PLATFORM_PRICE_CEILING`: the magnitude no price of the market reaches, default 1e6
    (COP/kWh, EUR/MWh); a market priced in a smaller unit (COP/MWh: XM's 2015 peak is 2.8e6) raises it."""
    return _finite("ENERGY_PLATFORM_PRICE_CEILING", text, "a positive number", lambda x: x > 0)


def _horizon_days(text: str) -> int:
    """`ENERGY_PLATFORM_HORIZON_DAYS`: days from the latest known prices to the forecast day, >= 1."""
    try:
        days = int(text)
    except ValueError:
        days = 0
    if days < 1:
        raise SettingError(f"ENERGY_PLATFORM_HORIZON_DAYS must be a whole number of days >= 1, got {text!r}")
    return days


def parse_country(text: str) -> str:
    """`ENERGY_PLATFORM_COUNTRY`: a country code of the `holidays` package (checked where the
    calendar is first read, the features asset: importing `holidays` here would slow every CLI
    call), or `none`."""
    text = text.strip()
    return "none" if text.lower() == "none" else (text.upper() or "CO")


def parse_timezone(text: str) -> str:
    """`ENERGY_PLATFORM_TIMEZONE`: an IANA time zone name (`Europe/Oslo`), checked here so that a
    typo fails every command naming the setting rather than a schedule at its first tick."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = text.strip() or DEFAULT_TIMEZONE
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingError(f"ENERGY_PLATFORM_TIMEZONE must be an IANA time zone name such as Europe/Oslo, got {text!r}") from None
    return name


def from_env(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    source = env.get("ENERGY_PLATFORM_SOURCE", "sample")
    if source not in ("sample", "xm") and not (source.startswith("csv:") and len(source) > 4):
        # named before anything is created (it was refused by the first ingestion run, in a new home)
        raise SettingError(f"ENERGY_PLATFORM_SOURCE must be 'sample', 'xm' or 'csv:<path>', got {source!r}")
    timezone = parse_timezone(env.get("ENERGY_PLATFORM_TIMEZONE", ""))
    if source == "xm" and timezone != DEFAULT_TIMEZONE:
        raise SettingError(f"ENERGY_PLATFORM_TIMEZONE={timezone}: XM's market days are {DEFAULT_TIMEZONE}'s; "
                           "another time zone is for another market's file (ENERGY_PLATFORM_SOURCE=csv:...)")
    lease_seconds(env.get(LEASE_ENV))  # read by each run (orchestration), checked here before anything is created
    home = Path(env.get("ENERGY_PLATFORM_HOME") or Path.cwd() / ".energy_platform").resolve()
    dagster_home = Path(env.get("DAGSTER_HOME") or home / "dagster_home").resolve()
    return Settings(
        home=home,
        source=source,
        horizon_days=_horizon_days(env.get("ENERGY_PLATFORM_HORIZON_DAYS", "2")),
        dagster_home=dagster_home,
        xm_base_url=env.get("ENERGY_PLATFORM_XM_URL", "https://servapibi.xm.com.co"),
        price_floor=_price_floor(env.get("ENERGY_PLATFORM_PRICE_FLOOR", "0")),
        price_ceiling=_price_ceiling(env.get("ENERGY_PLATFORM_PRICE_CEILING") or "1e6"),
        country=parse_country(env.get("ENERGY_PLATFORM_COUNTRY", "CO")),
        price_unit=(env.get("ENERGY_PLATFORM_PRICE_UNIT") or "").strip() or DEFAULT_PRICE_UNIT,
        timezone=timezone,
        oni_url=env.get("ENERGY_PLATFORM_ONI_URL", "https://www.cpc.ncep.noaa.gov/data/indices/oni.ascii.txt"),
        operating_dir=env.get("ENERGY_PLATFORM_OPERATING_DIR") or None,
        mlflow_uri=tracking_uri(env.get("MLFLOW_TRACKING_URI")),
        dagster_pg_url=dagster_pg_url(env.get(DAGSTER_PG_ENV)),
        mlflow_ui=(env.get("ENERGY_PLATFORM_MLFLOW_UI_URL") or "").strip() or None,
        dagster_ui=((env.get("ENERGY_PLATFORM_DAGSTER_UI_URL") or "").strip() or DEFAULT_DAGSTER_UI).rstrip("/"),
        warehouse=warehouse_path(env.get(WAREHOUSE_ENV), env.get(WAREHOUSE_DATA_ENV)),
        reports_keep_days=_reports_keep_days(env.get("ENERGY_PLATFORM_REPORTS_KEEP_DAYS") or str(DEFAULT_REPORTS_KEEP_DAYS)),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; also points DAGSTER_HOME at the home's instance."""
    settings = from_env()
    settings.ensure_dirs()
    os.environ.setdefault("DAGSTER_HOME", str(settings.dagster_home))
    return settings
