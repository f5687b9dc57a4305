"""PostgreSQL and an MLflow tracking server on 127.0.0.1, from the system's packages.

What `make prod-up`, the profile's CI test and the benchmark start: the same services a
deployment runs on other hosts, here on this machine so the profile is exercised for real (no
mocks). PostgreSQL runs from Debian's binaries (`pg_config --bindir`, else
/usr/lib/postgresql/*/bin) as the `postgres` user when we are root (it refuses to run as root),
trusts local connections and listens on 127.0.0.1 only. Every process started here is stopped by
`stop()`, which the context managers call.

    python -m energy_platform.local_services up DIR [--port P] [--mlflow-port Q]
    python -m energy_platform.local_services down DIR
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from energy_platform.profile import DAGSTER_PG_ENV

PG_SUPERUSER = "postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bindir() -> Path | None:
    """Where initdb and pg_ctl are; None when PostgreSQL is not installed."""
    candidates = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    if shutil.which("initdb"):
        candidates.append(str(Path(shutil.which("initdb")).parent))
    return next((Path(c) for c in candidates if c and (Path(c) / "initdb").exists() and (Path(c) / "pg_ctl").exists()), None)


class PostgresCluster:
    """A throw-away cluster in `root` (data, socket, log), on 127.0.0.1:`port`.

    `durable=False` turns fsync off: right for a test, wrong for a benchmark against SQLite.
    """

    def __init__(self, root: Path, port: int | None = None, durable: bool = True):
        self.bindir = postgres_bindir()
        if self.bindir is None:
            raise FileNotFoundError("PostgreSQL is not installed (no initdb/pg_ctl): apt-get install postgresql")
        self.root, self.port, self.durable = Path(root), port or free_port(), durable
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self._as_postgres = os.geteuid() == 0

    def _cmd(self, *args: str) -> list[str]:
        return (["runuser", "-u", PG_SUPERUSER, "--"] if self._as_postgres else []) + list(args)

    def _run(self, *args: str) -> None:
        out = subprocess.run(self._cmd(*args), capture_output=True, text=True, check=False)
        if out.returncode:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}"
                               + (f"\n{self.log.read_text()[-2000:]}" if self.log.exists() else ""))

    def start(self) -> PostgresCluster:
        """initdb once, then start and wait until it accepts connections; a running cluster is kept."""
        self.root.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            shutil.chown(self.root, PG_SUPERUSER, PG_SUPERUSER)
            self.root.chmod(0o700)
            if subprocess.run(self._cmd("test", "-w", str(self.root)), check=False).returncode:
                raise PermissionError(f"user {PG_SUPERUSER} cannot reach {self.root}: choose a folder whose parents it may enter (e.g. under /tmp)")
        if self.running():
            return self
        if not (self.data / "PG_VERSION").exists():
            self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", PG_SUPERUSER, "-A", "trust",
                      "-E", "UTF8", "--locale=C", "--no-sync")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c max_connections=200"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "120", "start")
        return self

    @property
    def pid(self) -> int | None:
        pidfile = self.data / "postmaster.pid"
        try:
            return int(pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def running(self) -> bool:
        if self.pid is None:
            return False
        status = subprocess.run(self._cmd(str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"), capture_output=True, check=False)
        return status.returncode == 0

    def create_database(self, name: str) -> str:
        """A new database; returns its SQLAlchemy URL for psycopg2."""
        self._run(str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_SUPERUSER, name)
        return self.url(name)

    def url(self, db: str) -> str:
        return f"postgresql+psycopg2://{PG_SUPERUSER}@127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        if self.running():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class MlflowServer:
    """`mlflow server` on PostgreSQL with served artifacts under `artifacts`; its own process group."""

    def __init__(self, backend_uri: str, artifacts: Path, log: Path, port: int | None = None, workers: int = 1):
        self.backend_uri, self.artifacts, self.log = backend_uri, Path(artifacts), Path(log)
        self.port, self.workers = port or free_port(), workers
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MlflowServer:
        """Launch without waiting (it takes a minute under load): call `wait()` before use."""
        self.artifacts.mkdir(parents=True, exist_ok=True)
        mlflow = Path(sys.executable).with_name("mlflow")
        args = [str(mlflow), "server", "--backend-store-uri", self.backend_uri, "--artifacts-destination", str(self.artifacts),
                "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)]
        env = {**os.environ, "MLFLOW_TRACKING_URI": ""}  # the server's own settings are its flags
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        return self

    def wait(self, seconds: float = 240) -> MlflowServer:
        deadline = time.monotonic() + seconds
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=2)
                return self
            except OSError:
                if self.process is None or self.process.poll() is not None:
                    raise RuntimeError(f"mlflow server exited: {self.log.read_text()[-3000:]}") from None
                if time.monotonic() > deadline:
                    raise TimeoutError(f"mlflow server did not answer within {seconds} s: {self.log.read_text()[-3000:]}") from None
                time.sleep(1)

    def stop(self, grace: float = 10) -> None:
        """SIGTERM to the whole group (the server forks workers), SIGKILL if it lingers.

        uvicorn waits for idle keep-alive clients on SIGTERM; `grace` bounds that wait.
        """
        if self.process is None or self.process.poll() is not None:
            return
        pgid = os.getpgid(self.process.pid)
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.process.wait(10)
        with contextlib.suppress(ProcessLookupError):  # workers that outlived their parent
            os.killpg(pgid, signal.SIGKILL)

    def __enter__(self) -> MlflowServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# -- `make prod-up` / `make prod-down` --------------------------------------------------------
def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(f"{url}/health", timeout=2)
        return True
    except OSError:
        return False


def _up(root: Path, port: int, mlflow_port: int) -> dict:
    """Start what is not running yet (a second `up` reuses both); write the settings to source."""
    cluster = PostgresCluster(root / "postgres", port).start()
    urls = {}
    for db in ("dagster", "mlflow", "lake"):
        marker = root / f".created-{db}"
        urls[db] = cluster.url(db) if marker.exists() else cluster.create_database(db)
        marker.touch()
    previous = json.loads((root / "profile.json").read_text()) if (root / "profile.json").exists() else {}
    server_url, server_pid = f"http://127.0.0.1:{mlflow_port}", previous.get("mlflow_server_pid")
    if not _answers(server_url):
        server = MlflowServer(urls["mlflow"], root / "mlartifacts", root / "mlflow-server.log", mlflow_port)
        server.start().wait()  # detached (own session): `down` stops it by the pid written below
        server_pid = server.process.pid
    profile = {
        "ENERGY_PLATFORM_HOME": str(root / "home"),
        DAGSTER_PG_ENV: urls["dagster"],
        "MLFLOW_TRACKING_URI": server_url,
        # the warehouse on DuckLake: its catalog in the same cluster, its Parquet files beside it
        "ENERGY_PLATFORM_WAREHOUSE": f"ducklake:postgres:dbname=lake host=127.0.0.1 port={cluster.port} user={PG_SUPERUSER}",
        "ENERGY_PLATFORM_WAREHOUSE_DATA_PATH": str(root / "lake-data"),
        "postgres_pid": cluster.pid,
        "mlflow_server_pid": server_pid,
    }
    (root / "profile.json").write_text(json.dumps(profile, indent=2))
    (root / "profile.env").write_text("".join(f"export {k}={shlex.quote(str(v))}\n" for k, v in profile.items() if k.isupper()))
    return profile


def _down(root: Path) -> None:
    info = json.loads((root / "profile.json").read_text()) if (root / "profile.json").exists() else {}
    pid = info.get("mlflow_server_pid")
    if pid:
        stop_group(pid)
    PostgresCluster(root / "postgres").stop()


def stop_group(pgid: int, grace: float = 15, process: subprocess.Popen | None = None) -> None:
    """SIGTERM a process group (started in its own session: group id = leader's pid), SIGKILL what lingers.

    `process`, the leader if it is our child, is reaped as we go: a zombie still counts as a member.
    """
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if process is not None:
                process.poll()
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m energy_platform.local_services")
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("root", type=Path, help="folder for the cluster, the server's artifacts and logs")
    parser.add_argument("--port", type=int, default=55432)
    parser.add_argument("--mlflow-port", type=int, default=5000)
    args = parser.parse_args(argv)
    root = args.root.resolve()
    if args.action == "down":
        _down(root)
        return 0
    profile = _up(root, args.port, args.mlflow_port)
    print(f"PostgreSQL on 127.0.0.1:{args.port}, MLflow tracking server on {profile['MLFLOW_TRACKING_URI']}")
    print(f"settings: . {root / 'profile.env'}   (home {profile['ENERGY_PLATFORM_HOME']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
