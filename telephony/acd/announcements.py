"""What a waiting caller hears every so often: their place in line and the expected wait.

Numbers are spoken from prompts generated with the rest (``ahead_3`` = 您前面还有三位),
so any Asterisk speaks Mandarin without Chinese core sound packs installed.
"""

from __future__ import annotations

import math

from telephony.config import Config

MAX_AHEAD = 20
MAX_MINUTES = 30
_DIGITS = "零一二三四五六七八九"


def chinese_number(n: int) -> str:
    """0–99 as spoken Mandarin: 十二, 二十, 三十五."""
    if not 0 <= n < 100:
        raise ValueError(f"{n} out of range 0..99")
    if n < 10:
        return _DIGITS[n]
    tens, ones = divmod(n, 10)
    head = "" if tens == 1 else _DIGITS[tens]
    return f"{head}十{_DIGITS[ones] if ones else ''}"


def announcement_texts() -> dict[str, str]:
    texts = {"ahead_0": "您是下一位，请稍候。"}
    for n in range(1, MAX_AHEAD + 1):
        texts[f"ahead_{n}"] = f"您前面还有{chinese_number(n)}位。"
    texts["ahead_many"] = f"您前面还有{chinese_number(MAX_AHEAD)}多位。"
    for m in range(1, MAX_MINUTES + 1):
        texts[f"wait_{m}"] = f"预计等待约{chinese_number(m)}分钟。"
    texts["wait_long"] = "预计等待时间较长，感谢您的耐心。"
    return texts


def callback_texts(config: Config) -> dict[str, str]:
    """Digits for reading a number back, and the whisper agents hear before a call-back."""
    texts = {f"digit_{d}": "幺" if d == 1 else _DIGITS[d] for d in range(10)}
    for name, queue in config.queues.items():
        texts[f"callback_whisper_{name}"] = f"回电，{queue.label}，正在接通居民。"
    return texts


def number_prompts(number: str) -> list[str]:
    """Prompt names reading a phone number digit by digit (1 as 幺, as on the phone)."""
    return [f"digit_{d}" for d in number if d.isdigit()]


def announcement(ahead: int, expected_wait_s: float) -> list[str]:
    """Prompt names for "N ahead of you, about M minutes"."""
    first = f"ahead_{ahead}" if ahead <= MAX_AHEAD else "ahead_many"
    minutes = max(1, math.ceil(expected_wait_s / 60))
    second = f"wait_{minutes}" if minutes <= MAX_MINUTES else "wait_long"
    return [first, second]


def expected_wait_s(ahead: int, handle_s: float, staffed: int) -> float:
    """Callers ahead (plus this one) share the staffed agents, one handle time each."""
    return (ahead + 1) * handle_s / max(1, staffed)
