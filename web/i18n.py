"""The pages' words in Chinese (the default: the hotline's staff read Chinese) and English.

One table, so a page cannot show a key that one language lacks: ``check`` at import
refuses a half-translated entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from aiohttp import web

LANG_COOKIE = "hotline_lang"


class Language(StrEnum):
    ZH = "zh-CN"
    EN = "en"


TEXTS: Mapping[str, Mapping[Language, str]] = {
    "hotline": {Language.ZH: "物业客服热线", Language.EN: "Resident hotline"},
    "sign_in": {Language.ZH: "登录", Language.EN: "Sign in"},
    "sign_out": {Language.ZH: "退出登录", Language.EN: "Sign out"},
    "user_name": {Language.ZH: "用户名", Language.EN: "User name"},
    "password": {Language.ZH: "密码", Language.EN: "Password"},
    "switch_language": {Language.ZH: "English", Language.EN: "中文"},
    "wrong_login": {
        Language.ZH: "用户名或密码不正确。",
        Language.EN: "The user name or password is not right.",
    },
    "locked": {
        Language.ZH: "登录失败次数过多，账户已暂时锁定，请于 {until} 后再试，或联系管理员。",
        Language.EN: "Too many failed sign-ins: the account is locked until {until}. "
        "Try again then, or ask an administrator.",
    },
    "expired": {
        Language.ZH: "登录已过期，请重新登录。",
        Language.EN: "Your session has ended. Please sign in again.",
    },
    "signed_out": {Language.ZH: "您已退出登录。", Language.EN: "You have signed out."},
    "form_expired": {
        Language.ZH: "页面已过期，请重新提交。",
        Language.EN: "The form had expired. Please send it again.",
    },
    "welcome": {Language.ZH: "您好，{name}", Language.EN: "Hello, {name}"},
    "role_agent": {Language.ZH: "坐席", Language.EN: "Agent"},
    "role_supervisor": {Language.ZH: "班长", Language.EN: "Supervisor"},
    "role_admin": {Language.ZH: "管理员", Language.EN: "Administrator"},
    "home_intro": {
        Language.ZH: "您已登录。通话记录、坐席工作台和监控大屏将在这里提供。",
        Language.EN: "You are signed in. Call review, the agent console and the "
        "wallboard will be here.",
    },
    "api_document": {Language.ZH: "接口文档（OpenAPI）", Language.EN: "API document (OpenAPI)"},
    "privacy_note": {
        Language.ZH: "居民的电话、姓名、房号、录音和通话文字属于个人信息，仅限工作需要查看，"
        "每次收听、下载和导出都会记录。",
        Language.EN: "Residents' numbers, names, rooms, recordings and transcripts are "
        "personal data: open them only as your work needs; every playback, download "
        "and export is recorded.",
    },
}


def check(texts: Mapping[str, Mapping[Language, str]]) -> None:
    for key, words in texts.items():
        missing = set(Language) - set(words)
        if missing:
            raise ValueError(f"text {key!r} lacks {', '.join(sorted(missing))}")


check(TEXTS)


def language_of(request: web.Request) -> Language:
    """``?lang=`` first (the switch link), then the cookie it set, else Chinese."""
    for raw in (request.query.get("lang"), request.cookies.get(LANG_COOKIE)):
        if raw in set(Language):
            return Language(raw)
    return Language.ZH


class Words:
    """``t("key", name=…)`` in templates: the text in the page's language."""

    def __init__(self, language: Language) -> None:
        self.language = language

    def __call__(self, key: str, **values: str) -> str:
        text = TEXTS[key][self.language]
        return text.format(**values) if values else text

    @property
    def other(self) -> Language:
        return Language.EN if self.language is Language.ZH else Language.ZH
