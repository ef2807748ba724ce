"""The service's settings: params.yaml's ``service:`` section, overridden by ``RECSYS_*`` environment variables.

Read once at start and validated here, so a bad value stops the server with a message naming the
setting instead of failing on the first request.
"""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

SYNCHRONOUS_MODES = ("NORMAL", "FULL")
MAX_BODY_BYTES = 4096  # a listen is ~60 bytes of JSON; anything near this is not a listen
MIN_ONLINE_LISTENS = 10  # above any sensible `recent_listens` the blend search may choose


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
    return Settings(
        bundle_dir=path("bundle_dir", "RECSYS_BUNDLE_DIR"),
        events_db=path("events_db", "RECSYS_EVENTS_DB"),
        host=env.get("RECSYS_HOST", str(service.get("host", "127.0.0.1"))),
        port=port,
        write_token=env.get("RECSYS_WRITE_TOKEN"),
        synchronous=env.get("RECSYS_EVENTS_SYNCHRONOUS", str(service.get("events_synchronous", "NORMAL"))).upper(),
        max_online_listens=service.get("max_online_listens", Settings.max_online_listens),
        workers=integer("workers", "RECSYS_WORKERS", Settings.workers, "1..64"),
    )
