"""The service's one typed configuration object.

Built once in ``main`` from a TOML file plus a handful of environment overrides, then
passed down; no module reads settings on its own. Every value is checked here so that a
bad config stops the service at start with the file, the key and the reason, instead of
failing on the first call that needs it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crm import validation
from crm.exceptions import InvalidInput
from crm.rules import ServiceRules
from telephony.exceptions import ConfigError

DEFAULT_CONFIG = Path("config/hotline.toml")

T = TypeVar("T")


@dataclass(frozen=True)
class CompanyConfig:
    name: str = "幸福家园"
    timezone: str = "Asia/Shanghai"  # for queue opening hours


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
    """``wait_s``: how long a unit of work waits for a connection (and on SQLite for the
    file's write lock) before it fails with 503 storage-unavailable, logged by name."""

    url: str = "sqlite+aiosqlite:///var/hotline.db"
    wait_s: float = 5.0


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
    """How callers wait: the music, and the longest anyone is kept waiting in any queue."""

    moh_class: str = "default"
    max_wait_s: float = 900.0


class Strategy:
    LONGEST_IDLE = "longest-idle"  # the ready agent idle longest (higher skill level first)
    RING_ALL = "ring-all"  # every ready agent at once, first to answer wins

    ALL = (LONGEST_IDLE, RING_ALL)


class WhenClosed:
    MESSAGE = "message"  # take a message (留言)
    WAIT = "wait"  # queue anyway (e.g. a supervisor covers the night)

    ALL = (MESSAGE, WAIT)


@dataclass(frozen=True)
class Hours:
    """Opening hours in the company's time zone; ``00:00-24:00`` is round the clock."""

    opens_min: int = 0
    closes_min: int = 24 * 60

    @property
    def always(self) -> bool:
        return self.opens_min == 0 and self.closes_min == 24 * 60

    def open_at(self, minute_of_day: int) -> bool:
        if self.opens_min <= self.closes_min:
            return self.opens_min <= minute_of_day < self.closes_min
        return minute_of_day >= self.opens_min or minute_of_day < self.closes_min  # overnight


@dataclass(frozen=True)
class QueueConfig:
    """One queue of the ACD; ``[queues.NAME]`` in the config file."""

    name: str
    label: str  # what agents hear in the whisper and supervisors read: 咨询, 报修 …
    priority: int = 0  # higher is served first across queues (emergency highest)
    strategy: str = Strategy.LONGEST_IDLE
    ring_timeout_s: float = 15.0
    wrap_up_s: float = 30.0
    announce_every_s: float = 45.0  # position and expected wait; 0 = never
    callback_after_s: float = 120.0  # offer 「按1…回电」 after this wait; 0 = never
    max_wait_s: float = 900.0
    hours: Hours = Hours()
    when_closed: str = WhenClosed.MESSAGE
    when_nobody_logged_in: str = WhenClosed.MESSAGE
    # An emergency line: rings every ready agent whatever their skills, and the duty
    # phone, at once (first to answer wins), and raises an alert on the supervisor screen.
    emergency: bool = False


DEFAULT_QUEUES: dict[str, QueueConfig] = {
    "inquiry": QueueConfig("inquiry", "咨询"),
    "repair": QueueConfig("repair", "报修"),
    "complaint": QueueConfig("complaint", "投诉", priority=1),
    "operator": QueueConfig("operator", "人工服务"),
    "emergency": QueueConfig(
        "emergency",
        "紧急求助",
        priority=100,
        strategy=Strategy.RING_ALL,
        ring_timeout_s=30,
        wrap_up_s=10,
        announce_every_s=0,
        callback_after_s=0,
        when_closed=WhenClosed.WAIT,
        when_nobody_logged_in=WhenClosed.WAIT,
        emergency=True,
    ),
}


@dataclass(frozen=True)
class AcdConfig:
    """How calls are offered to agents."""

    max_misses: int = 2  # unanswered offers in a row before the agent is paused
    duty_endpoint: str | None = None  # the duty manager's phone, rung for emergencies
    default_handle_s: float = 180.0  # expected handle time until real ones are known
    # What an agent picks from when pausing at the console (the API takes any text).
    pause_reasons: tuple[str, ...] = ("休息", "培训", "会议", "事后处理")


@dataclass(frozen=True)
class CallbackConfig:
    """Queued call-backs: how residents are dialled and how often we try."""

    dial: str = "PJSIP/{number}@residents-trunk"  # {number}: the resident's number
    caller_id: str = "400"
    ring_timeout_s: float = 30.0
    retry_delay_s: float = 300.0
    max_attempts: int = 3
    expire_after_s: float = 24 * 3600.0


@dataclass(frozen=True)
class MessagesConfig:
    """Messages (留言) recorded by ARI."""

    max_length_s: int = 120
    max_silence_s: int = 5
    format: str = "wav"


@dataclass(frozen=True)
class RecordingConfig:
    """Call recordings: when they start, where the audio is kept and for how long.

    Asterisk writes the files; we copy them out through ARI (so Asterisk may run on
    another host), keep them in ``dir`` and delete Asterisk's copy. ``retention_days``
    deletes old audio but keeps the call record and its transcript (0 keeps it forever).
    """

    enabled: bool = True
    include_ivr: bool = False  # also record the caller from the answer, not from the agent
    dir: Path = Path("var/recordings")
    retention_days: int = 0
    fetch_attempts: int = 6
    fetch_retry_s: float = 5.0


@dataclass(frozen=True)
class TranscriptionConfig:
    """Offline speech-to-text with Vosk.

    ``model`` is a Vosk model folder (``hotline models download zh`` fetches the
    Mandarin one); ``language`` is what it must be, so a wrong folder fails at start.
    """

    enabled: bool = True
    model: Path = Path("var/models/vosk-model-small-cn-0.22")
    language: str = "zh"
    workers: int = 2  # processes, each holding the model once (~300 MB for the small one)
    max_attempts: int = 3
    retry_delay_s: float = 30.0
    # Start the workers (and load the model) with the service, so the first call's
    # transcript does not wait for it; off in tests that never transcribe.
    warm_start: bool = True


class CookieSecurity(StrEnum):
    """When the session cookie carries ``Secure``: ``auto`` when the request came over TLS
    (directly, or as a trusted proxy's ``X-Forwarded-Proto: https`` says)."""

    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


@dataclass(frozen=True)
class AccessConfig:
    """Staff sign-in (service standards §6: personal data only to those who need it).

    Users and API tokens live in the database (``hotline user``, ``hotline token``); these
    are the rules their sessions follow. ``agent_endpoints`` is what an admin may point an
    agent's phone at: an internal extension, never a trunk to an outside number (toll
    fraud). ``trusted_proxies`` are the addresses whose ``X-Forwarded-For`` and
    ``X-Forwarded-Proto`` we believe (a TLS-terminating reverse proxy).
    """

    session_idle_minutes: int = 30
    session_max_hours: int = 12
    login_failures: int = 5
    lockout_minutes: int = 15
    secure_cookies: CookieSecurity = CookieSecurity.AUTO
    trusted_proxies: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    agent_endpoints: str = r"^(PJSIP|SIP|IAX2)/[0-9]{2,8}$|^Local/[0-9]{2,8}@[A-Za-z0-9_-]+$"


# Retired: shared tokens from the environment. Setting one stops the start with the way
# to upgrade, so nobody believes a door is locked by a token nothing reads any more.
RETIRED_ENV = {
    "HOTLINE_REVIEWER_TOKEN": "recordings and transcripts",
    "HOTLINE_STAFF_TOKEN": "cases and residents",
}


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
    queues: Mapping[str, QueueConfig] = field(default_factory=lambda: dict(DEFAULT_QUEUES))
    acd: AcdConfig = AcdConfig()
    callbacks: CallbackConfig = CallbackConfig()
    messages: MessagesConfig = MessagesConfig()
    recording: RecordingConfig = RecordingConfig()
    transcription: TranscriptionConfig = TranscriptionConfig()
    access: AccessConfig = AccessConfig()
    rules: ServiceRules = field(default_factory=ServiceRules)


ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "HOTLINE_ARI_URL": ("ari", "url"),
    "HOTLINE_ARI_USER": ("ari", "user"),
    "HOTLINE_ARI_PASSWORD": ("ari", "password"),
    "HOTLINE_DB_URL": ("database", "url"),
    "HOTLINE_HTTP_PORT": ("http", "port"),
    "HOTLINE_VOSK_MODEL": ("transcription", "model"),
    "HOTLINE_VOSK_LANGUAGE": ("transcription", "language"),
}


def _pause_reasons(ac: _Reader, default: tuple[str, ...]) -> tuple[str, ...]:
    reasons = ac.get("pause_reasons", default, _strings, "a list of strings")
    if not reasons:
        raise ac.fail("pause_reasons", "must name at least one reason")
    for reason in reasons:
        try:
            validation.name_text("pause_reasons", reason, max_len=20)
        except InvalidInput as err:
            raise ac.fail("pause_reasons", f"{reason!r}: {err.reason}") from None
    return tuple(r.strip() for r in reasons)


def _strings(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(r, str) for r in raw):
        raise TypeError("not a list of strings")
    return tuple(raw)


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
    for var, guarded in RETIRED_ENV.items():
        if env.get(var):
            raise ConfigError("environment", var, f"(which opened {guarded}) {RETIRED_HOW}")

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
    ac, cb, m = table("acd"), table("callbacks"), table("messages")
    rec, tr, acc = table("recording"), table("transcription"), table("access")
    ru = table("rules")
    defaults = Config()
    timezone = c.text("timezone", defaults.company.timezone)
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise c.fail("timezone", f"unknown time zone {timezone!r}") from err
    holding = HoldingConfig(
        moh_class=ho.text("moh_class", defaults.holding.moh_class),
        max_wait_s=ho.number("max_wait_s", defaults.holding.max_wait_s, minimum=1),
    )
    queues = _queues(source, data.get("queues", {}), holding)
    duty = ac.text("duty_endpoint", "", nonempty=False).strip() or None
    if duty is not None and not _ENDPOINT.fullmatch(duty):
        raise ac.fail("duty_endpoint", f"must look like PJSIP/1099, got {duty!r}")
    dial = cb.text("dial", defaults.callbacks.dial)
    if "{number}" not in dial:
        raise cb.fail("dial", "must contain {number}, where the resident's number goes")
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
        company=CompanyConfig(name=c.text("name", defaults.company.name), timezone=timezone),
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
        database=DatabaseConfig(
            url=db_url, wait_s=d.number("wait_s", defaults.database.wait_s, minimum=0.1)
        ),
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
        holding=holding,
        queues=queues,
        acd=AcdConfig(
            max_misses=ac.integer("max_misses", defaults.acd.max_misses, minimum=1),
            duty_endpoint=duty,
            default_handle_s=ac.number(
                "default_handle_s", defaults.acd.default_handle_s, minimum=1
            ),
            pause_reasons=_pause_reasons(ac, defaults.acd.pause_reasons),
        ),
        callbacks=CallbackConfig(
            dial=dial,
            caller_id=cb.text("caller_id", defaults.callbacks.caller_id),
            ring_timeout_s=cb.number(
                "ring_timeout_s", defaults.callbacks.ring_timeout_s, minimum=5
            ),
            retry_delay_s=cb.number("retry_delay_s", defaults.callbacks.retry_delay_s, minimum=1),
            max_attempts=cb.integer(
                "max_attempts", defaults.callbacks.max_attempts, minimum=1, maximum=20
            ),
            expire_after_s=cb.number(
                "expire_after_s", defaults.callbacks.expire_after_s, minimum=60
            ),
        ),
        messages=MessagesConfig(
            max_length_s=m.integer(
                "max_length_s", defaults.messages.max_length_s, minimum=5, maximum=600
            ),
            max_silence_s=m.integer(
                "max_silence_s", defaults.messages.max_silence_s, minimum=1, maximum=60
            ),
            format=m.text("format", defaults.messages.format),
        ),
        recording=RecordingConfig(
            enabled=rec.get("enabled", defaults.recording.enabled, _as_bool, "true or false"),
            include_ivr=rec.get(
                "include_ivr", defaults.recording.include_ivr, _as_bool, "true or false"
            ),
            dir=rec.path("dir", defaults.recording.dir, base),
            retention_days=rec.integer(
                "retention_days", defaults.recording.retention_days, minimum=0, maximum=36500
            ),
            fetch_attempts=rec.integer(
                "fetch_attempts", defaults.recording.fetch_attempts, minimum=1, maximum=100
            ),
            fetch_retry_s=rec.number(
                "fetch_retry_s", defaults.recording.fetch_retry_s, minimum=0.1
            ),
        ),
        transcription=TranscriptionConfig(
            enabled=tr.get("enabled", defaults.transcription.enabled, _as_bool, "true or false"),
            model=tr.path("model", defaults.transcription.model, base),
            language=tr.text("language", defaults.transcription.language),
            workers=tr.integer("workers", defaults.transcription.workers, minimum=1, maximum=64),
            max_attempts=tr.integer(
                "max_attempts", defaults.transcription.max_attempts, minimum=1, maximum=20
            ),
            retry_delay_s=tr.number(
                "retry_delay_s", defaults.transcription.retry_delay_s, minimum=0.1
            ),
            warm_start=tr.get(
                "warm_start", defaults.transcription.warm_start, _as_bool, "true or false"
            ),
        ),
    )
    config = dataclasses.replace(
        config,
        access=_access(acc),
        rules=_rules(ru),
    )
    for reader in (c, a, h, d, r, p, i, ho, ac, cb, m, rec, tr, acc, ru):
        reader.done()
    if config.ari.reconnect_max_s < config.ari.reconnect_initial_s:
        raise a.fail("reconnect_max_s", "must not be below reconnect_initial_s")
    return config


def _access(acc: _Reader) -> AccessConfig:
    defaults = AccessConfig()
    for key in ("reviewer_token", "staff_token"):
        if key in acc.data:
            raise acc.fail(key, RETIRED_HOW)
    pattern = acc.text("agent_endpoints", defaults.agent_endpoints)
    try:
        re.compile(pattern)
    except re.error as err:
        raise acc.fail("agent_endpoints", f"is not a regular expression: {err}") from None
    return AccessConfig(
        session_idle_minutes=acc.integer(
            "session_idle_minutes", defaults.session_idle_minutes, minimum=1, maximum=24 * 60
        ),
        session_max_hours=acc.integer(
            "session_max_hours", defaults.session_max_hours, minimum=1, maximum=24 * 7
        ),
        login_failures=acc.integer(
            "login_failures", defaults.login_failures, minimum=1, maximum=100
        ),
        lockout_minutes=acc.integer(
            "lockout_minutes", defaults.lockout_minutes, minimum=1, maximum=24 * 60
        ),
        secure_cookies=acc.get(
            "secure_cookies", defaults.secure_cookies, CookieSecurity, "auto, always or never"
        ),
        trusted_proxies=acc.get(
            "trusted_proxies", (), _networks, "a list of addresses or networks like 10.0.0.0/24"
        ),
        allowed_origins=acc.get(
            "allowed_origins", (), _origins, "a list of origins like https://hotline.example"
        ),
        agent_endpoints=pattern,
    )


RETIRED_HOW = (
    "is retired: staff sign in with their own accounts (hotline user add) and "
    "integrations use API tokens (hotline token create); see the README, "
    "'Upgrading from the shared tokens'"
)


def _networks(raw: Any) -> tuple[str, ...]:
    """Addresses or networks (10.0.0.5, 10.0.0.0/24): a typo fails the start, not a request."""
    networks = _text_tuple(raw)
    for network in networks:
        ipaddress.ip_network(network, strict=False)  # ValueError names it
    return networks


def _text_tuple(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(x, str) and x.strip() for x in raw):
        raise TypeError("not a list of strings")
    return tuple(x.strip() for x in raw)


def _origins(raw: Any) -> tuple[str, ...]:
    origins = _text_tuple(raw)
    for origin in origins:
        if not re.fullmatch(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?", origin):
            raise ValueError(origin)
    return origins


_TABLES = {
    "company",
    "ari",
    "http",
    "database",
    "ring",
    "prompts",
    "ivr",
    "holding",
    "queues",
    "acd",
    "callbacks",
    "messages",
    "recording",
    "transcription",
    "access",
    "rules",
}
_ENDPOINT = re.compile(r"^[A-Za-z][A-Za-z0-9]*/[A-Za-z0-9_.+@-]{1,80}$")
_QUEUE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_HOURS = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


def _queues(source: str, raw: Any, holding: HoldingConfig) -> dict[str, QueueConfig]:
    """The five standard queues (with defaults) plus any the file adds."""
    if not isinstance(raw, dict):
        raise ConfigError(source, "queues", "must be a table of [queues.NAME] tables")
    queues = {
        name: dataclasses.replace(q, max_wait_s=holding.max_wait_s)
        for name, q in DEFAULT_QUEUES.items()
    }
    for name, table in raw.items():
        if not _QUEUE_NAME.fullmatch(name):
            raise ConfigError(source, f"queues.{name}", "name must be lowercase letters/digits")
        if not isinstance(table, dict):
            raise ConfigError(source, f"queues.{name}", "must be a table")
        q = _Reader(source, f"queues.{name}", table)
        base = queues.get(name) or QueueConfig(name, name, max_wait_s=holding.max_wait_s)
        strategy = q.text("strategy", base.strategy)
        if strategy not in Strategy.ALL:
            raise q.fail("strategy", f"must be one of {', '.join(Strategy.ALL)}")
        closed = q.text("when_closed", base.when_closed)
        nobody = q.text("when_nobody_logged_in", base.when_nobody_logged_in)
        for key, value in (("when_closed", closed), ("when_nobody_logged_in", nobody)):
            if value not in WhenClosed.ALL:
                raise q.fail(key, f"must be one of {', '.join(WhenClosed.ALL)}")
        label = q.text("label", base.label)
        try:
            validation.name_text("label", label, max_len=20)
        except InvalidInput as err:
            raise q.fail("label", err.reason) from None
        queues[name] = QueueConfig(
            name=name,
            label=label.strip(),
            priority=q.integer("priority", base.priority, minimum=0, maximum=1000),
            strategy=strategy,
            ring_timeout_s=q.number("ring_timeout_s", base.ring_timeout_s, minimum=3),
            wrap_up_s=q.number("wrap_up_s", base.wrap_up_s, minimum=0),
            announce_every_s=_zero_or_at_least(q, "announce_every_s", base.announce_every_s, 10),
            callback_after_s=_zero_or_at_least(q, "callback_after_s", base.callback_after_s, 1),
            max_wait_s=min(q.number("max_wait_s", base.max_wait_s, minimum=1), holding.max_wait_s),
            hours=_hours(q, base.hours),
            when_closed=closed,
            when_nobody_logged_in=nobody,
            emergency=q.get("emergency", base.emergency, _as_bool, "true or false"),
        )
        q.done()
    return queues


def _rules(q: _Reader) -> ServiceRules:
    """Deadlines of the service standards; the defaults are the company's seed values."""
    d = ServiceRules()
    minutes = {
        key: q.number(key, getattr(d, key), minimum=0.1)
        for key in (
            "urgent_on_site_min",
            "inquiry_reply_min",
            "price_review_min",
            "complaint_on_site_min",
        )
    }
    hours = {
        key: q.number(key, getattr(d, key), minimum=0.01)
        for key in ("urgent_fixed_h", "general_fixed_h", "callback_due_h", "callback_retry_h")
    }
    rules = ServiceRules(
        **minutes,
        **hours,
        callback_max_attempts=q.integer(
            "callback_max_attempts", d.callback_max_attempts, minimum=1, maximum=20
        ),
        warn_fraction=q.number("warn_fraction", d.warn_fraction, minimum=0.0),
        urgent_keywords=q.get("urgent_keywords", d.urgent_keywords, _as_words, "a list of words"),
    )
    if rules.warn_fraction >= 1:
        raise q.fail("warn_fraction", "must be below 1 (the share of the time left)")
    if rules.urgent_on_site_min / 60 > rules.urgent_fixed_h:
        raise q.fail("urgent_on_site_min", "must not be later than urgent_fixed_h")
    return rules


def _as_words(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(w, str) and w.strip() for w in raw):
        raise TypeError("not a list of words")
    return tuple(w.strip() for w in raw)


def _zero_or_at_least(q: _Reader, key: str, default: float, minimum: float) -> float:
    value = q.number(key, default)
    if 0 < value < minimum:
        raise q.fail(key, f"must be 0 (never) or at least {minimum}, got {value}")
    return value


def _hours(q: _Reader, default: Hours) -> Hours:
    if "hours" not in q.data:
        q.used.add("hours")
        return default
    text = q.text("hours", "")
    match = _HOURS.fullmatch(text.strip())
    if not match:
        raise q.fail("hours", f"expected HH:MM-HH:MM, got {text!r}")
    oh, om, ch, cm = (int(g) for g in match.groups())
    if oh > 23 or om > 59 or ch > 24 or cm > 59 or (ch == 24 and cm):
        raise q.fail("hours", f"not a time of day: {text!r}")
    opens, closes = oh * 60 + om, ch * 60 + cm
    if opens == closes:
        raise q.fail("hours", "opens and closes at the same time")
    return Hours(opens, closes)


def _as_bool(raw: Any) -> bool:
    if not isinstance(raw, bool):
        raise TypeError(raw)
    return raw
