"""The service's settings: params.yaml's ``service:`` section, overridden by ``RECSYS_*`` environment variables.

Read once at start and validated here, so a bad value stops the server with a message naming the
setting instead of failing on the first request.
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

SYNCHRONOUS_MODES = ("NORMAL", "FULL")
MAX_BODY_BYTES = 4096  # a listen is ~60 bytes of JSON; anything near this is not a listen
MIN_ONLINE_LISTENS = 10  # above any sensible `recent_listens` the blend search may choose
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names it and what was expected."""


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to start; relative paths in params.yaml are relative to that file."""

    bundle_dir: Path
    events_db: Path
    host: str = "127.0.0.1"
    port: int = 8000
    write_token: str | None = None  # when set, POST requires `Authorization: Bearer <token>`
    synchronous: str = "NORMAL"  # SQLite: NORMAL survives a killed process, FULL also a power loss
    max_online_listens: int = 5000  # latest online listens read per request (candidates and "already heard")
    max_body_bytes: int = MAX_BODY_BYTES
    workers: int = 1  # uvicorn worker processes on the one port (one process holds one core)
    events_url: str | None = None  # a postgresql:// URL: the shared event store; None: SQLite at events_db
    events_pool_size: int = 4  # PostgreSQL connections per worker process

    @property
    def store_url(self) -> str:
        """Where listens go, as a URL (``events_url``, or SQLite's file as ``sqlite:///path``)."""
        return self.events_url or f"sqlite:///{self.events_db}"

    def __post_init__(self) -> None:
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise SettingsError(f"port: expected an integer 0..65535, got {self.port!r}")
        if self.synchronous not in SYNCHRONOUS_MODES:
            raise SettingsError(f"synchronous: expected one of {', '.join(SYNCHRONOUS_MODES)}, got {self.synchronous!r}")
        if isinstance(self.max_online_listens, bool) or not isinstance(self.max_online_listens, int) \
                or self.max_online_listens < MIN_ONLINE_LISTENS:
            raise SettingsError(f"service.max_online_listens: expected an integer >= {MIN_ONLINE_LISTENS} (the online "
                                f"candidates read the latest listens), got {self.max_online_listens!r}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or not 1 <= self.workers <= 64:
            raise SettingsError(f"workers: expected an integer 1..64, got {self.workers!r}")
        if self.events_url is not None and not self.events_url.startswith(POSTGRES_SCHEMES):
            raise SettingsError(f"events_url: expected sqlite:///path or postgresql://user@host:port/db, "
                                f"got {redacted(self.events_url)!r}")
        if isinstance(self.events_pool_size, bool) or not isinstance(self.events_pool_size, int) \
                or not 1 <= self.events_pool_size <= 100:
            raise SettingsError(f"events_pool_size: expected an integer 1..100, got {self.events_pool_size!r}")
        if self.write_token is not None and not self.write_token.strip():
            raise SettingsError("RECSYS_WRITE_TOKEN: set but empty; unset it or give a real token")

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def check_bind(self) -> None:
        """Refuse to listen beyond this machine while anyone could write listens."""
        if not self.loopback and not self.write_token:
            raise SettingsError(f"host {self.host!r} is not a loopback address: set RECSYS_WRITE_TOKEN to protect "
                                "writes, or bind to 127.0.0.1")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``$RECSYS_PARAMS`` (default ``params.yaml``) and the ``RECSYS_*`` overrides."""
    env = os.environ if environ is None else environ
    params_path = Path(env.get("RECSYS_PARAMS", "params.yaml"))
    try:
        params = yaml.safe_load(params_path.read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise SettingsError(f"{params_path}: cannot be read ({error.strerror}); run from the repository root "
                            "or set RECSYS_PARAMS") from error
    service = params.get("service")
    if not isinstance(service, dict):
        raise SettingsError(f"{params_path}: no `service:` section")
    return settings_from(service, params_path.parent, env)


def settings_from(service: dict[str, Any], base: Path, env: Mapping[str, str]) -> Settings:
    """Build from a ``service`` params section; params paths resolve against ``base``, env paths as given."""
    def path(key: str, variable: str) -> Path:
        if variable in env:
            return Path(env[variable])
        if key not in service:
            raise SettingsError(f"service.{key}: missing (or set {variable})")
        return base / str(service[key])

    def integer(key: str, variable: str, default: int, expected: str) -> int:
        value = env.get(variable, service.get(key, default))
        try:
            return int(value)
        except (TypeError, ValueError):
            raise SettingsError(f"{key}: expected an integer {expected}, got {value!r}") from None

    port = integer("port", "RECSYS_PORT", 8000, "0..65535")
    events_db, events_url = events_target(service, base, env, path)
    return Settings(
        bundle_dir=path("bundle_dir", "RECSYS_BUNDLE_DIR"),
        events_db=events_db,
        events_url=events_url,
        events_pool_size=integer("events_pool_size", "RECSYS_EVENTS_POOL_SIZE", Settings.events_pool_size, "1..100"),
        host=env.get("RECSYS_HOST", str(service.get("host", "127.0.0.1"))),
        port=port,
        write_token=env.get("RECSYS_WRITE_TOKEN"),
        synchronous=env.get("RECSYS_EVENTS_SYNCHRONOUS", str(service.get("events_synchronous", "NORMAL"))).upper(),
        max_online_listens=service.get("max_online_listens", Settings.max_online_listens),
        workers=integer("workers", "RECSYS_WORKERS", Settings.workers, "1..64"),
    )


def events_target(service: dict[str, Any], base: Path, env: Mapping[str, str],
                  path: Callable[[str, str], Path]) -> tuple[Path, str | None]:
    """(SQLite file, PostgreSQL URL or None) from ``RECSYS_EVENTS_URL`` / ``service.events_url``, else ``events_db``.

    ``sqlite:///relative/path`` (three slashes; four for an absolute one) names the SQLite file; in
    params.yaml a relative one is relative to that file, like ``events_db``. Any other URL is returned as
    the events URL, for ``Settings`` to check.
    """
    from_env = "RECSYS_EVENTS_URL" in env
    url = env["RECSYS_EVENTS_URL"] if from_env else service.get("events_url")
    if not url:
        return path("events_db", "RECSYS_EVENTS_DB"), None
    url = str(url)
    if url.startswith("sqlite:///"):
        file = Path(url.removeprefix("sqlite:///"))
        return (file if from_env or file.is_absolute() else base / file), None
    unused = "events_db" not in service and "RECSYS_EVENTS_DB" not in env  # not needed beside a database URL
    return (base / "events.sqlite" if unused else path("events_db", "RECSYS_EVENTS_DB")), url


def redacted(url: str) -> str:
    """The URL without its password, for logs and messages (a malformed one without ``://`` too)."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    credentials, at, host = rest.rpartition("@")
    if at and ":" in credentials:
        credentials = credentials.split(":", 1)[0] + ":***"
    return f"{scheme}{separator}{credentials}{at}{host}"
