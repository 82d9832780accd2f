"""The service's one typed configuration object.

Built once in ``main`` from a TOML file plus a handful of environment overrides, then
passed down; no module reads settings on its own. Every value is checked here so that a
bad config stops the service at start with the file, the key and the reason, instead of
failing on the first call that needs it.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from telephony.exceptions import ConfigError

DEFAULT_CONFIG = Path("config/hotline.toml")

T = TypeVar("T")


@dataclass(frozen=True)
class CompanyConfig:
    name: str = "幸福家园"


@dataclass(frozen=True)
class AriConfig:
    url: str = "http://127.0.0.1:8088/ari"
    user: str = "hotline"
    password: str = field(default="hotline", repr=False)
    app: str = "hotline"
    ping_interval_s: float = 10.0
    reconnect_initial_s: float = 0.5
    reconnect_max_s: float = 10.0
    request_timeout_s: float = 10.0
    # Concurrent HTTP connections to ARI: Asterisk serves each in a thread of its own,
    # so a burst queues here instead of starting a hundred threads on a small PBX.
    max_connections: int = 32


@dataclass(frozen=True)
class HttpConfig:
    host: str = "127.0.0.1"
    port: int = 8080


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = "sqlite+aiosqlite:///var/hotline.db"


@dataclass(frozen=True)
class RingConfig:
    """Ring cadence, used to judge 'answered within three rings' (service standards §1).

    China: 1 s on / 4 s off; North America: 2 s on / 4 s off.
    """

    on_ms: int = 1000
    off_ms: int = 4000
    answer_within_rings: int = 3

    @property
    def first_ring_ends_ms(self) -> int:
        return self.on_ms

    @property
    def rings_deadline_ms(self) -> int:
        """Milliseconds after ringing starts at which ring number N ends."""
        n = self.answer_within_rings
        return n * self.on_ms + (n - 1) * self.off_ms


@dataclass(frozen=True)
class PromptsConfig:
    """Where prompt audio lives and how Asterisk is told to play it.

    ``media_prefix`` is put in front of a prompt name: ``sound:hotline/`` when the files
    are installed in Asterisk's sounds folder (the sandbox does this), or
    ``sound:http://host:port/prompts/`` when Asterisk runs on another host and fetches
    them from our HTTP server.
    """

    dir: Path = Path("var/sounds")
    media_prefix: str = "sound:hotline/"
    voice: str = "cmn"
    speed_wpm: int = 150


@dataclass(frozen=True)
class IvrConfig:
    menu: Path = Path("config/ivr.toml")


@dataclass(frozen=True)
class HoldingConfig:
    """Where a caller waits after the IVR until the queue issue brings agents."""

    moh_class: str = "default"
    max_wait_s: float = 900.0


@dataclass(frozen=True)
class Config:
    source: Path | None = None
    company: CompanyConfig = CompanyConfig()
    ari: AriConfig = AriConfig()
    http: HttpConfig = HttpConfig()
    database: DatabaseConfig = DatabaseConfig()
    ring: RingConfig = RingConfig()
    prompts: PromptsConfig = PromptsConfig()
    ivr: IvrConfig = IvrConfig()
    holding: HoldingConfig = HoldingConfig()


ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "HOTLINE_ARI_URL": ("ari", "url"),
    "HOTLINE_ARI_USER": ("ari", "user"),
    "HOTLINE_ARI_PASSWORD": ("ari", "password"),
    "HOTLINE_DB_URL": ("database", "url"),
    "HOTLINE_HTTP_PORT": ("http", "port"),
}


class _Reader:
    """Pulls typed values out of one TOML table, naming file and key on error."""

    def __init__(self, source: str, table: str, data: Mapping[str, Any]) -> None:
        self.source = source
        self.table = table
        self.data = data
        self.used: set[str] = set()

    def fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(self.source, f"{self.table}.{key}", reason)

    def get(self, key: str, default: T, convert: Callable[[Any], T], what: str) -> T:
        self.used.add(key)
        if key not in self.data:
            return default
        raw = self.data[key]
        try:
            return convert(raw)
        except (TypeError, ValueError) as err:
            raise self.fail(key, f"expected {what}, got {raw!r}") from err

    def text(self, key: str, default: str, *, nonempty: bool = True) -> str:
        value = self.get(key, default, _as_str, "a string")
        if nonempty and not value.strip():
            raise self.fail(key, "must not be empty")
        return value

    def number(self, key: str, default: float, *, minimum: float = 0.0) -> float:
        value = self.get(key, default, _as_float, "a number")
        if value < minimum:
            raise self.fail(key, f"must be at least {minimum}, got {value}")
        return value

    def integer(
        self, key: str, default: int, *, minimum: int = 0, maximum: int | None = None
    ) -> int:
        value = self.get(key, default, _as_int, "an integer")
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise self.fail(key, f"must be {bound}, got {value}")
        return value

    def path(self, key: str, default: Path, base: Path) -> Path:
        value = Path(self.text(key, str(default)))
        return value if value.is_absolute() else base / value

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.fail(unknown[0], "unknown key (misspelt?)")


def _as_str(raw: Any) -> str:
    if not isinstance(raw, str):
        raise TypeError(raw)
    return raw


def _as_float(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise TypeError(raw)
    return float(raw)


def _as_int(raw: Any) -> int:
    if isinstance(raw, (bool, float)):
        raise TypeError(raw)
    return int(raw)


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read the TOML file (if any), apply HOTLINE_* overrides and validate everything.

    Relative paths in the file are taken from the project folder (the file's parent's
    parent for ``config/hotline.toml``), so the service runs the same from any cwd.
    """
    env = os.environ if env is None else env
    path = path or Path(env.get("HOTLINE_CONFIG", DEFAULT_CONFIG))
    source = str(path)
    data: dict[str, Any] = {}
    if path.exists():
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(source, "-", f"not valid TOML: {err}") from err
    elif "HOTLINE_CONFIG" in env or path != DEFAULT_CONFIG:
        raise ConfigError(source, "-", "file not found")
    base = path.resolve().parent.parent if path.exists() else Path.cwd()

    for var, (section, key) in ENV_OVERRIDES.items():
        if var in env:
            data.setdefault(section, {})
            if not isinstance(data[section], dict):
                raise ConfigError(source, section, "must be a table")
            data[section][key] = env[var]

    tables: dict[str, _Reader] = {}
    for name, raw in data.items():
        if name not in _TABLES:
            raise ConfigError(source, name, "unknown section")
        if not isinstance(raw, dict):
            raise ConfigError(source, name, "must be a table")
        tables[name] = _Reader(source, name, raw)

    def table(name: str) -> _Reader:
        return tables.get(name) or _Reader(source, name, {})

    c, a, h, d = table("company"), table("ari"), table("http"), table("database")
    r, p, i, ho = table("ring"), table("prompts"), table("ivr"), table("holding")
    defaults = Config()
    ari_url = a.text("url", defaults.ari.url)
    if not ari_url.startswith(("http://", "https://")):
        raise a.fail("url", f"must start with http:// or https://, got {ari_url!r}")
    db_url = d.text("url", defaults.database.url)
    if db_url.startswith("sqlite") and ":///" in db_url and ":memory:" not in db_url:
        prefix, _, file = db_url.partition(":///")
        if not Path(file).is_absolute():
            db_url = f"{prefix}:///{base / file}"
    config = Config(
        source=path if path.exists() else None,
        company=CompanyConfig(name=c.text("name", defaults.company.name)),
        ari=AriConfig(
            url=ari_url.rstrip("/"),
            user=a.text("user", defaults.ari.user),
            password=a.text("password", defaults.ari.password),
            app=a.text("app", defaults.ari.app),
            ping_interval_s=a.number("ping_interval_s", defaults.ari.ping_interval_s, minimum=1),
            reconnect_initial_s=a.number(
                "reconnect_initial_s", defaults.ari.reconnect_initial_s, minimum=0.05
            ),
            reconnect_max_s=a.number("reconnect_max_s", defaults.ari.reconnect_max_s, minimum=0.1),
            request_timeout_s=a.number(
                "request_timeout_s", defaults.ari.request_timeout_s, minimum=0.1
            ),
            max_connections=a.integer(
                "max_connections", defaults.ari.max_connections, minimum=1, maximum=1000
            ),
        ),
        http=HttpConfig(
            host=h.text("host", defaults.http.host),
            port=h.integer("port", defaults.http.port, minimum=0, maximum=65535),
        ),
        database=DatabaseConfig(url=db_url),
        ring=RingConfig(
            on_ms=r.integer("on_ms", defaults.ring.on_ms, minimum=100),
            off_ms=r.integer("off_ms", defaults.ring.off_ms, minimum=0),
            answer_within_rings=r.integer(
                "answer_within_rings", defaults.ring.answer_within_rings, minimum=1
            ),
        ),
        prompts=PromptsConfig(
            dir=p.path("dir", defaults.prompts.dir, base),
            media_prefix=p.text("media_prefix", defaults.prompts.media_prefix),
            voice=p.text("voice", defaults.prompts.voice),
            speed_wpm=p.integer("speed_wpm", defaults.prompts.speed_wpm, minimum=80, maximum=450),
        ),
        ivr=IvrConfig(menu=i.path("menu", defaults.ivr.menu, base)),
        holding=HoldingConfig(
            moh_class=ho.text("moh_class", defaults.holding.moh_class),
            max_wait_s=ho.number("max_wait_s", defaults.holding.max_wait_s, minimum=1),
        ),
    )
    for reader in (c, a, h, d, r, p, i, ho):
        reader.done()
    if config.ari.reconnect_max_s < config.ari.reconnect_initial_s:
        raise a.fail("reconnect_max_s", "must not be below reconnect_initial_s")
    return config


_TABLES = {"company", "ari", "http", "database", "ring", "prompts", "ivr", "holding"}
