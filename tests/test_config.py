"""A bad configuration stops the service at start, naming the file, the key and the reason."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from telephony.config import Hours, IvrConfig, TranscriptionConfig, load_config
from telephony.exceptions import ConfigError, ModelError
from telephony.ivr.menu import ActionKind, load_menu
from tests.conftest import TEST_MODEL
from web.app import build_app

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_config_and_menu_load() -> None:
    """The files in config/ are valid and give the sandbox defaults."""
    config = load_config(ROOT / "config" / "hotline.toml", env={})
    assert config.ari.url == "http://127.0.0.1:8088/ari"
    assert config.ari.app == "hotline"
    assert config.http.port == 8080
    assert config.ring.first_ring_ends_ms == 1000
    assert config.ring.rings_deadline_ms == 11000  # three rings of a 1 s on / 4 s off cadence
    assert config.database.wait_s == 5  # for a connection: fail fast, never hold calls up
    menu = load_menu(config.ivr.menu)
    main = menu.node(menu.root)
    assert {k: str(a) for k, a in main.options.items()} == {
        "1": "queue:inquiry",
        "2": "submenu:repair",
        "3": "queue:complaint",
        "9": "emergency",
        "0": "operator",
        "*": "repeat",
    }
    assert "{company}" in menu.prompts["greeting"]


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    """HOTLINE_* variables win over the file, and are validated like it."""
    path = write(tmp_path, "h.toml", "[http]\nport = 8080\n")
    config = load_config(
        path,
        env={
            "HOTLINE_HTTP_PORT": "9090",
            "HOTLINE_ARI_URL": "http://10.0.0.5:8088/ari/",
            "HOTLINE_ARI_PASSWORD": "s3cret",
            "HOTLINE_DB_URL": "postgresql+asyncpg://h@localhost/h",
        },
    )
    assert config.http.port == 9090
    assert config.ari.url == "http://10.0.0.5:8088/ari"
    assert config.database.url == "postgresql+asyncpg://h@localhost/h"
    assert "s3cret" not in repr(config)  # never printed with the config


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("[http]\nport = 70000\n", "http.port", "between 0 and 65535"),
        ('[http]\nport = "x"\n', "http.port", "expected an integer"),
        ('[ari]\nurl = "127.0.0.1:8088"\n', "ari.url", "http://"),
        ('[ari]\npasword = "x"\n', "ari.pasword", "unknown key"),
        ("[telephone]\nx = 1\n", "telephone", "unknown section"),
        ("[ring]\non_ms = 10\n", "ring.on_ms", ">= 100"),
        ("[database]\nwait_s = 0\n", "database.wait_s", "at least 0.1"),
        ('[company]\nname = ""\n', "company.name", "must not be empty"),
        ("[ari]\nreconnect_initial_s = 5\nreconnect_max_s = 1\n", "ari.reconnect_max_s", "below"),
        ("[http\n", "-", "not valid TOML"),
        ('[company]\ntimezone = "Mars/Olympus"\n', "company.timezone", "unknown time zone"),
        ('[queues.repair]\nstrategy = "random"\n', "queues.repair.strategy", "longest-idle"),
        ("[queues.repair]\nring_timeout_s = 1\n", "queues.repair.ring_timeout_s", "at least 3"),
        ('[queues.repair]\nhours = "8-20"\n', "queues.repair.hours", "HH:MM-HH:MM"),
        ('[queues.repair]\nhours = "08:00-25:00"\n', "queues.repair.hours", "not a time"),
        ('[queues.repair]\nhours = "08:00-08:00"\n', "queues.repair.hours", "same time"),
        ('[queues.repair]\nwhen_closed = "hangup"\n', "queues.repair.when_closed", "message"),
        ("[queues.repair]\nannounce_every_s = 3\n", "queues.repair.announce_every_s", "0 (never)"),
        ("[queues.repair]\nemergency = 1\n", "queues.repair.emergency", "true or false"),
        ("[queues.repair]\nwrapup = 1\n", "queues.repair.wrapup", "unknown key"),
        ("[queues.Repair]\nwrap_up_s = 1\n", "queues.Repair", "lowercase"),
        ('[queues.repair]\nlabel = "报修\\n部"\n', "queues.repair.label", "one line"),
        ('[queues.repair]\nlabel = "<b>报修</b>"\n', "queues.repair.label", "markup"),
        ('[queues.repair]\nlabel = "报\\u200b修"\n', "queues.repair.label", "invisible"),
        ('[queues.repair]\nlabel = "=报修"\n', "queues.repair.label", "formula"),
        ('[acd]\nduty_endpoint = "1099"\n', "acd.duty_endpoint", "PJSIP/1099"),
        ("[acd]\nmax_misses = 0\n", "acd.max_misses", ">= 1"),
        ('[callbacks]\ndial = "PJSIP/trunk"\n', "callbacks.dial", "{number}"),
        ("[callbacks]\nmax_attempts = 0\n", "callbacks.max_attempts", "between 1 and 20"),
        ("[messages]\nmax_length_s = 1\n", "messages.max_length_s", "between 5 and 600"),
    ],
)
def test_bad_values_name_file_key_and_reason(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    """Each bad value is refused with where it is and why."""
    path = write(tmp_path, "bad.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert caught.value.source == str(path)
    assert caught.value.key == key
    assert reason in caught.value.reason


def test_a_missing_config_file_named_explicitly_is_an_error(tmp_path: Path) -> None:
    """Pointing HOTLINE_CONFIG at a file that is not there fails instead of using defaults."""
    with pytest.raises(ConfigError, match="file not found"):
        load_config(None, env={"HOTLINE_CONFIG": str(tmp_path / "nope.toml")})


MENU_OK = """
[prompts]
greeting = "您好"
invalid = "错"
no_input = "没"
hold_timeout = "忙"
route_operator = "人工"
route_inquiry = "咨询"
top = "请选择"
message_asked = "留言"
message_no_agents = "无人"
message_out_of_hours = "下班"
message_thanks = "谢谢"
callback_offer = "回电"
callback_number_is = "号码"
callback_confirm = "确认"
callback_enter = "输入"
callback_invalid = "有误"
callback_booked = "好"
callback_not_booked = "等候"
[menu]
root = "top"
[menu.nodes.top]
prompt = "top"
[menu.nodes.top.options]
"1" = "queue:inquiry"
"0" = "operator"
"""


def test_a_minimal_menu_loads(tmp_path: Path) -> None:
    """Defaults fill timeout and retries; the queues a menu reaches are known."""
    menu = load_menu(write(tmp_path, "ivr.toml", MENU_OK))
    node = menu.node("top")
    assert node.timeout_s == 6.0
    assert node.max_retries == 2
    assert node.options["1"].kind is ActionKind.QUEUE
    assert menu.queues == {"inquiry", "operator"}


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        (
            ('"1" = "queue:inquiry"', '"1" = "submenu:nowhere"'),
            "menu.nodes.top.options.1",
            "no node",
        ),
        (('"1" = "queue:inquiry"', '"1" = "dance"'), "menu.nodes.top.options.1", "unknown action"),
        (('"1" = "queue:inquiry"', '"X" = "operator"'), "menu.nodes.top.options.X", "not a DTMF"),
        (
            ('"1" = "queue:inquiry"', '"1" = "queue:repair"'),
            "menu.nodes.top.options.1",
            "route_repair",
        ),
        (('prompt = "top"', 'prompt = "missing"'), "menu.nodes.top.prompt", "no prompt text"),
        (('root = "top"', 'root = "start"'), "menu.root", "no node"),
        (('greeting = "您好"\n', ""), "prompts.greeting", "missing"),
    ],
)
def test_menu_mistakes_are_caught_before_the_first_call(
    tmp_path: Path, change: tuple[str, str], key: str, reason: str
) -> None:
    """A menu that could strand a caller is refused at start with the key at fault."""
    path = write(tmp_path, "ivr.toml", MENU_OK.replace(*change))
    with pytest.raises(ConfigError) as caught:
        load_menu(path)
    assert caught.value.key == key
    assert reason in caught.value.reason


def test_queues_default_to_the_five_standard_ones_and_take_overrides(tmp_path: Path) -> None:
    """Every standard queue exists without configuration; a file changes what it names and
    can add queues; no queue waits longer than the holding limit."""
    path = write(
        tmp_path,
        "q.toml",
        "[holding]\nmax_wait_s = 600\n"
        '[queues.complaint]\nhours = "08:00-20:00"\nwrap_up_s = 60\nmax_wait_s = 9999\n'
        '[queues.parking]\nlabel = "停车"\n',
    )
    config = load_config(path, env={})
    assert set(config.queues) == {
        "inquiry",
        "repair",
        "complaint",
        "operator",
        "emergency",
        "parking",
    }
    complaint = config.queues["complaint"]
    assert (complaint.label, complaint.wrap_up_s, complaint.max_wait_s) == ("投诉", 60, 600)
    assert complaint.hours.open_at(8 * 60)
    assert not complaint.hours.open_at(20 * 60)
    assert config.queues["emergency"].emergency
    assert config.queues["emergency"].priority > config.queues["complaint"].priority
    assert config.queues["parking"].label == "停车"


def test_overnight_hours_wrap_around_midnight() -> None:
    night = Hours(opens_min=22 * 60, closes_min=6 * 60)
    assert night.open_at(23 * 60)
    assert night.open_at(5 * 60 + 59)
    assert not night.open_at(6 * 60)
    assert not night.open_at(12 * 60)


def test_a_menu_routing_to_an_unconfigured_queue_stops_the_service(tmp_path: Path) -> None:
    """The menu is checked against [queues] at start, naming the option."""
    menu = (ROOT / "config" / "ivr.toml").read_text(encoding="utf-8")
    menu = menu.replace('"1" = "queue:inquiry"', '"1" = "queue:parking"')
    path = write(
        tmp_path,
        "ivr.toml",
        menu.replace("route_inquiry = ", 'route_parking = "请稍候。"\nroute_inquiry = '),
    )
    config = dataclasses.replace(
        load_config(ROOT / "config" / "hotline.toml", env={}), ivr=IvrConfig(menu=path)
    )
    with pytest.raises(ConfigError) as caught:
        build_app(config)
    assert caught.value.key == "menu.nodes.main.options.1"
    assert "parking" in caught.value.reason


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("[recording]\nretention_days = -1\n", "recording.retention_days", "between 0"),
        ("[recording]\nenabled = 1\n", "recording.enabled", "true or false"),
        ("[recording]\nfetch_attempts = 0\n", "recording.fetch_attempts", "between 1"),
        ("[recording]\nkeep = 3\n", "recording.keep", "unknown key"),
        ("[transcription]\nworkers = 0\n", "transcription.workers", "between 1"),
        ('[transcription]\nlanguage = ""\n', "transcription.language", "must not be empty"),
    ],
)
def test_recording_and_transcription_settings_are_checked(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "h.toml", text), env={})
    assert caught.value.key == key
    assert reason in caught.value.reason


def test_the_speech_model_comes_from_config_or_the_environment(tmp_path: Path) -> None:
    """Production defaults to the Mandarin model; an admin points elsewhere by env."""
    shipped = load_config(ROOT / "config" / "hotline.toml", env={})
    assert shipped.transcription.model.name == "vosk-model-small-cn-0.22"
    assert shipped.transcription.language == "zh"
    moved = load_config(
        ROOT / "config" / "hotline.toml",
        env={"HOTLINE_VOSK_MODEL": str(tmp_path / "m"), "HOTLINE_VOSK_LANGUAGE": "ko"},
    )
    assert moved.transcription.model == tmp_path / "m"
    assert moved.transcription.language == "ko"


def test_the_service_refuses_to_start_without_its_speech_model(tmp_path: Path) -> None:
    """Named folder and the command to fix it, before any call is taken."""
    config = dataclasses.replace(
        load_config(ROOT / "config" / "hotline.toml", env={}),
        transcription=TranscriptionConfig(model=tmp_path / "nowhere", language="zh"),
    )
    with pytest.raises(ModelError) as caught:
        build_app(config)
    assert str(tmp_path / "nowhere") in str(caught.value)
    assert "hotline models" in str(caught.value)
    switched_off = dataclasses.replace(config, transcription=TranscriptionConfig(enabled=False))
    build_app(switched_off)  # recordings only: starts without a model


def test_a_model_of_another_language_is_refused_at_start() -> None:
    config = dataclasses.replace(
        load_config(ROOT / "config" / "hotline.toml", env={}),
        transcription=TranscriptionConfig(model=TEST_MODEL or Path("/"), language="zh"),
    )
    with pytest.raises(ModelError) as caught:
        build_app(config)
    assert "Korean (ko)" in str(caught.value)


@pytest.mark.parametrize("retired", ["HOTLINE_REVIEWER_TOKEN", "HOTLINE_STAFF_TOKEN"])
def test_the_shared_tokens_are_retired_with_the_way_to_upgrade(retired: str) -> None:
    """A token nothing reads any more must not look like a lock: the start stops, saying
    what replaced it; the token itself is not repeated."""
    shipped = ROOT / "config" / "hotline.toml"
    token = "a-long-random-reviewer-token-1234"
    with pytest.raises(ConfigError) as caught:
        load_config(shipped, env={retired: token})
    assert caught.value.key == retired
    assert "hotline user add" in str(caught.value)
    assert "hotline token create" in str(caught.value)
    assert token not in str(caught.value)


def test_access_rules_are_read_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "hotline.toml"
    path.write_text(
        "[access]\nsession_idle_minutes = 10\nlockout_minutes = 5\n"
        'allowed_origins = ["https://hotline.example"]\nsecure_cookies = "always"\n'
    )
    access = load_config(path, env={}).access
    assert (access.session_idle_minutes, access.lockout_minutes) == (10, 5)
    assert access.allowed_origins == ("https://hotline.example",)
    assert access.secure_cookies == "always"
    for bad, key in (
        ('staff_token = "x"', "access.staff_token"),
        ("session_idle_minutes = 0", "access.session_idle_minutes"),
        ('allowed_origins = ["hotline.example"]', "access.allowed_origins"),
        ('agent_endpoints = "("', "access.agent_endpoints"),
        ('secure_cookies = "sometimes"', "access.secure_cookies"),
        ('trusted_proxies = ["10.0.0.300"]', "access.trusted_proxies"),
    ):
        path.write_text(f"[access]\n{bad}\n")
        with pytest.raises(ConfigError) as caught:
            load_config(path, env={})
        assert caught.value.key == key, bad
