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
        Language.ZH: "您已登录：查看通话记录、搜索通话文字、处理留言。"
        "坐席工作台和监控大屏随后提供。",
        Language.EN: "You are signed in: review calls, search what was said, pass on "
        "messages. The agent console and the wallboard come next.",
    },
    "api_document": {Language.ZH: "接口文档（OpenAPI）", Language.EN: "API document (OpenAPI)"},
    "privacy_note": {
        Language.ZH: "居民的电话、姓名、房号、录音和通话文字属于个人信息，仅限工作需要查看，"
        "每次收听、下载和导出都会记录。",
        Language.EN: "Residents' numbers, names, rooms, recordings and transcripts are "
        "personal data: open them only as your work needs; every playback, download "
        "and export is recorded.",
    },
    # -- the review pages (issue 14) --------------------------------------------------
    **{
        key: {Language.ZH: zh, Language.EN: en}
        for key, zh, en in (
            ("nav_calls", "通话记录", "Call log"),
            ("nav_search", "搜索通话", "Search calls"),
            ("nav_messages", "留言", "Messages"),
            ("calls_title", "通话记录", "Call log"),
            ("filter", "筛选", "Filter"),
            ("reset", "清除", "Clear"),
            ("date_from", "开始日期", "From"),
            ("date_to", "结束日期", "To"),
            ("queue", "队列", "Queue"),
            ("agent", "坐席", "Agent"),
            ("caller", "来电号码", "Caller"),
            ("direction", "方向", "Direction"),
            ("direction_in", "呼入", "Inbound"),
            ("direction_out", "回访外呼", "Call-back"),
            ("ended_how", "结束方式", "How it ended"),
            ("rings", "三声接听", "Three rings"),
            ("rings_within", "三声内接听", "Within three rings"),
            ("rings_late", "超过三声或未接", "Later or not answered"),
            ("has_recording", "有录音", "Recording"),
            ("has_transcript", "有转写", "Transcript"),
            ("case_kind", "工单类型", "Case kind"),
            ("any", "全部", "Any"),
            ("yes", "有", "Yes"),
            ("no", "无", "No"),
            ("sort", "排序", "Sort"),
            ("sort_newest", "最新在前", "Newest first"),
            ("sort_oldest", "最早在前", "Oldest first"),
            ("sort_longest-ring", "振铃最长在前", "Longest ring first"),
            ("time", "时间", "Time"),
            ("duration", "时长", "Duration"),
            ("ring_time", "振铃", "Ring"),
            ("ended", "结束", "End"),
            ("case", "工单", "Case"),
            ("calls_found", "共 {total} 通", "{total} calls"),
            ("no_calls", "没有符合条件的通话。", "No calls match these filters."),
            ("previous", "上一页", "Previous"),
            ("next", "下一页", "Next"),
            ("page_of", "第 {page} / {pages} 页", "Page {page} of {pages}"),
            ("live", "通话中", "live"),
            ("not_answered", "未接通", "not answered"),
            ("call_title", "通话 #{id}", "Call #{id}"),
            ("recording", "录音", "Recording"),
            ("mix", "双方混音", "Both"),
            ("leg_resident", "居民", "Resident"),
            ("leg_agent", "坐席", "Agent"),
            ("download", "下载", "Download"),
            ("no_recording", "这通电话没有可播放的录音。", "This call has no recording to play."),
            ("transcript", "通话文字", "Transcript"),
            ("no_transcript", "还没有转写文字（{status}）。", "No transcript yet ({status})."),
            ("click_to_seek", "点击任一句，从那里开始播放。", "Click a line to play from there."),
            ("ivr_path", "按键路径", "IVR path"),
            ("timeline", "排队经过", "Queue timeline"),
            ("no_queue", "这通电话没有进入队列。", "This call never entered a queue."),
            ("no_case", "没有关联工单。", "No case is linked."),
            ("speaker_resident", "居民", "Resident"),
            ("speaker_agent", "坐席", "Agent"),
            ("speaker_message", "留言", "Message"),
            ("forbidden_title", "无权查看", "Not allowed"),
            ("forbidden", "您没有权限查看这一页：{reason}", "You may not see this page: {reason}"),
            ("not_found_title", "找不到", "Not found"),
            ("role_may_not", "您的角色不能使用这一页。", "Your role may not use this page."),
            ("back_home", "返回首页", "Back to the start page"),
            (
                "hear_only_taken",
                "坐席只能查看自己接听的通话；这通电话不是您接听的。",
                "An agent may open only the calls they took; you did not take this one.",
            ),
            ("bad_filter", "筛选条件有误：{field} {reason}", "Check this filter: {field} {reason}"),
            ("back_to_log", "返回通话记录", "Back to the call log"),
            ("messages_title", "留言", "Messages"),
            ("show_handled", "显示已转告", "Show passed on"),
            ("show_open", "只看待转告", "Only waiting"),
            ("for_whom", "转给", "For"),
            ("reason", "原因", "Why"),
            ("passed_on", "已转告", "Passed on"),
            ("pass_on", "标记为已转告", "Mark passed on"),
            ("note", "备注", "Note"),
            ("waiting", "待转告", "Waiting"),
            ("no_messages", "没有留言。", "No messages."),
            ("handled_by_at", "{by} 于 {at}", "{by} at {at}"),
            (
                "audio_not_allowed",
                "录音仅限班长和接听坐席收听。",
                "Only supervisors and the agent who took the call may listen.",
            ),
            ("opened_at", "开始", "Started"),
            ("answered_at", "接听", "Answered"),
            ("call_facts", "通话信息", "Call"),
            ("choice", "居民选择", "Caller's choice"),
            ("greeting", "问候语", "Greeting"),
            ("heard", "已播完", "heard"),
            ("not_heard", "未播完", "not heard"),
            ("end_caller-hangup", "居民挂机", "caller hung up"),
            ("end_agent-hangup", "坐席挂机", "agent hung up"),
            ("end_holding-timeout", "等待超时", "waited too long"),
            ("end_message-left", "已留言", "left a message"),
            ("end_callback-requested", "预约回电", "call-back booked"),
            ("end_service-error", "系统错误", "service error"),
            ("end_connect-failed", "接通失败", "could not connect"),
            ("end_asterisk-restart", "交换机重启", "PBX restarted"),
            ("end_channel-lost", "线路丢失", "line lost"),
            ("end_service-restart", "服务重启", "service restarted"),
            ("message_problem_twice", "这条留言已由他人转告。", "Someone else passed it on."),
            ("message_problem_note", "备注不能使用：请去掉特殊字符。", "The note was refused."),
            ("message_reason_asked", "居民选择留言", "chose to leave one"),
            ("message_reason_no-agents", "无坐席在线", "no agent logged in"),
            ("message_reason_out-of-hours", "非工作时间", "out of hours"),
            ("overdue", "已超时", "overdue"),
            ("nav_console", "坐席工作台", "Console"),
            ("my_cases", "我的工单", "My cases"),
            ("summary", "摘要", "Summary"),
            ("time_left", "剩余时间", "Time left"),
            ("no_my_cases", "您没有未结工单。", "You have no open cases."),
            ("console_title", "坐席工作台", "Agent console"),
            (
                "console_no_agent",
                "您的账户没有关联坐席，不能使用工作台。请联系管理员。",
                "Your user has no agent record: ask an administrator to link one.",
            ),
            ("phone_state", "话机状态", "Phone"),
            ("state_for", "已持续", "for"),
            ("wrap_left", "整理剩余", "wrap-up left"),
            ("pause_reason", "暂停原因", "Reason"),
            ("act_log_in", "签入", "Log in"),
            ("act_ready", "就绪", "Ready"),
            ("act_pause", "暂停", "Pause"),
            ("act_log_out", "签出", "Log out"),
            ("act_end_wrap", "结束整理", "End wrap-up"),
            ("agent_state_logged-out", "未签入", "logged out"),
            ("agent_state_paused", "暂停", "paused"),
            ("agent_state_ready", "就绪", "ready"),
            ("agent_state_ringing", "振铃中", "ringing"),
            ("agent_state_on-call", "通话中", "on a call"),
            ("agent_state_wrap-up", "事后整理", "wrap-up"),
            (
                "pop_emergency",
                "紧急求助！请立即接听并按应急流程处理。",
                "EMERGENCY: answer now and follow the emergency steps.",
            ),
            ("pop_waited", "已等待", "waited"),
            ("pop_residents", "居民", "Residents"),
            ("pop_open_cases", "未结工单", "Open cases"),
            ("pop_recent", "最近来电", "Recent calls"),
            (
                "pop_none",
                "来电时，这里会显示来电居民和工单。",
                "When your phone rings, the caller shows here.",
            ),
            ("pop_no_resident", "未登记的号码", "Number not in the directory"),
            ("pop_no_cases", "无", "none"),
            ("pop_no_recent", "首次来电", "first call"),
            ("phrases_title", "服务用语", "Service phrases"),
            (
                "phrases",
                "您好 · 请 · 谢谢 · 对不起 · 再见",
                "您好 hello · 请 please · 谢谢 thank you · 对不起 sorry · 再见 goodbye",
            ),
            ("search", "搜索", "Search"),
            ("search_words", "要找的字词", "Words to find"),
            ("search_hint", "如：漏水、电梯、3栋201", "e.g. 漏水, 电梯, 3栋201"),
            (
                "search_found",
                "找到 {calls} 通通话、{cases} 个工单",
                "{calls} calls and {cases} cases found",
            ),
            ("no_calls_found", "没有通话说到这些字词。", "No call says these words."),
            ("where_summary", "摘要", "Summary"),
            ("where_detail", "详情", "Detail"),
            ("where_note", "备注", "Note"),
            ("phone", "联系电话", "Phone"),
            ("room", "房号", "Unit"),
            ("repair_class", "维修类别", "Repair class"),
            ("deadlines", "时限", "Deadlines"),
            ("deadline", "时限", "Deadline"),
            ("due", "截止", "Due"),
            ("met", "完成", "Met"),
            ("cancelled", "已取消", "cancelled"),
            ("history", "处理记录", "History"),
            ("calls", "通话", "Calls"),
            ("callbacks", "回访", "Call-backs"),
            ("status_open", "待处理", "open"),
            ("status_in-progress", "处理中", "in progress"),
            ("status_waiting", "等待中", "waiting"),
            ("status_resolved", "已解决", "resolved"),
            ("status_closed", "已归档", "closed"),
            ("status_cancelled", "已取消", "cancelled"),
            ("event_entered", "进入队列", "entered the queue"),
            ("event_offered", "振铃坐席", "rang an agent"),
            ("event_offer-ended", "振铃结束", "ringing ended"),
            ("event_answered", "坐席接听", "agent answered"),
            ("event_left", "离开队列", "left the queue"),
            ("event_talk-ended", "通话结束", "conversation ended"),
            ("event_wrap-up-ended", "整理结束", "wrap-up ended"),
        )
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

    def label(self, prefix: str, value: str | None) -> str:
        """A stored value's label (``end_caller-hangup``), or the value itself if unnamed."""
        if value is None:
            return ""
        words = TEXTS.get(f"{prefix}_{value}")
        return words[self.language] if words else value

    @property
    def other(self) -> Language:
        return Language.EN if self.language is Language.ZH else Language.ZH
