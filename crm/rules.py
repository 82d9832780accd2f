"""The service standards as code, in one place (../shared/spec/service-standards.md §2-5).

Everything a case may do and by when lives here: the deadlines per kind and repair class
(their values come from ``[rules]`` in the config, seeded with the company's standards),
which status may follow which, the eight complaint steps in order, and which words in a
call make a repair urgent. The repositories ask this module and never decide on their own,
so a rule changes in one place and its test sits next to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from crm.exceptions import Conflict


class Kind:
    INQUIRY = "inquiry"  # 咨询
    REPAIR = "repair"  # 报修
    COMPLAINT = "complaint"  # 投诉
    EMERGENCY = "emergency"  # 紧急求助
    MESSAGE = "message"  # 留言

    ALL = (INQUIRY, REPAIR, COMPLAINT, EMERGENCY, MESSAGE)
    LABELS: ClassVar[Mapping[str, str]] = {
        INQUIRY: "咨询",
        REPAIR: "报修",
        COMPLAINT: "投诉",
        EMERGENCY: "紧急求助",
        MESSAGE: "留言",
    }


class Channel:
    PHONE = "phone"
    EMAIL = "email"
    LETTER = "letter"
    WALK_IN = "walk-in"
    CHAT = "chat"

    ALL = (PHONE, EMAIL, LETTER, WALK_IN, CHAT)


class Status:
    OPEN = "open"  # taken, nobody has worked on it yet
    IN_PROGRESS = "in-progress"
    WAITING = "waiting"  # on the resident: a price to agree, an appointment, a key
    RESOLVED = "resolved"  # done; the call-back (回访) may still be owed
    CLOSED = "closed"  # archived (归档)
    CANCELLED = "cancelled"  # a duplicate or a mistaken contact

    ALL = (OPEN, IN_PROGRESS, WAITING, RESOLVED, CLOSED, CANCELLED)
    LIVE = (OPEN, IN_PROGRESS, WAITING)  # a new call of the same kind joins these


# Which status may follow which. Reopening (resolved/closed → in-progress) is its own
# action, ``reopen``, because it also counts the reopening and keeps the history.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    Status.OPEN: (Status.IN_PROGRESS, Status.WAITING, Status.RESOLVED, Status.CANCELLED),
    Status.IN_PROGRESS: (Status.WAITING, Status.RESOLVED, Status.CANCELLED),
    Status.WAITING: (Status.IN_PROGRESS, Status.RESOLVED, Status.CANCELLED),
    Status.RESOLVED: (Status.CLOSED,),
    Status.CLOSED: (),
    Status.CANCELLED: (),
}
REOPENABLE = (Status.RESOLVED, Status.CLOSED)


class IllegalTransition(Conflict):
    """A status change the rules do not allow (HTTP 409), with the reason in words."""

    def __init__(self, current: str, wanted: str, reason: str) -> None:
        super().__init__(f"cannot go from {current} to {wanted}: {reason}")
        self.current = current
        self.wanted = wanted
        self.reason = reason


def check_transition(current: str, wanted: str) -> None:
    if wanted not in Status.ALL:
        raise IllegalTransition(current, wanted, f"unknown status; one of {', '.join(Status.ALL)}")
    if wanted == current:
        raise IllegalTransition(current, wanted, "the case is already there")
    if wanted not in TRANSITIONS[current]:
        allowed = ", ".join(TRANSITIONS[current]) or "nothing (reopen it instead)"
        if current in (Status.CANCELLED,):
            allowed = "nothing: a cancelled case stays cancelled"
        raise IllegalTransition(current, wanted, f"allowed next: {allowed}")


def needs_callback(kind: str) -> bool:
    """After every repair and every complaint is resolved, the resident is called back (§5)."""
    return kind in (Kind.REPAIR, Kind.COMPLAINT)


# -- complaints (§4) ------------------------------------------------------------------


class Step:
    RECEIVE = "receive"  # 接诉: apologise, record
    CLASSIFY = "classify"  # 辨诉: nature and subject, reasonable or not
    INVESTIGATE = "investigate"  # 析诉
    ASSIGN = "assign"  # 定责: the responsible department or person
    RESOLVE = "resolve"  # 处理: the resident signs off
    CALL_BACK = "call-back"  # 回访: satisfied or not (done by the call-back outcome)
    REVIEW = "review"  # 总结: causes and prevention
    ARCHIVE = "archive"  # 归档: the case is closed

    ORDER = (RECEIVE, CLASSIFY, INVESTIGATE, ASSIGN, RESOLVE, CALL_BACK, REVIEW, ARCHIVE)
    LABELS: ClassVar[Mapping[str, str]] = {
        RECEIVE: "接诉",
        CLASSIFY: "辨诉",
        INVESTIGATE: "析诉",
        ASSIGN: "定责",
        RESOLVE: "处理",
        CALL_BACK: "回访",
        REVIEW: "总结",
        ARCHIVE: "归档",
    }


class Nature:
    VALID = "valid"  # 有效投诉: a real failure of the company
    COMMUNICATION = "communication"  # 沟通性投诉

    ALL = (VALID, COMMUNICATION)


SORTS = ("help", "inquiry", "suggestion", "venting")  # 求助 / 咨询 / 建议 / 发泄
SUBJECTS = ("equipment", "attitude", "quality", "incident")  # 设备 / 服务态度 / 服务质量 / 突发事件


def next_step(done: str) -> str | None:
    index = Step.ORDER.index(done)
    return Step.ORDER[index + 1] if index + 1 < len(Step.ORDER) else None


def check_step(done: str, wanted: str) -> None:
    """Steps go in order, one at a time; 回访 comes from the call-back, 归档 closes."""
    if wanted not in Step.ORDER:
        raise IllegalTransition(done, wanted, f"unknown step; one of {', '.join(Step.ORDER)}")
    expected = next_step(done)
    if wanted != expected:
        label = Step.LABELS.get(expected or "", "none: the complaint is archived")
        raise IllegalTransition(
            done, wanted, f"the next step is {expected} ({label}); steps cannot be skipped"
        )


# -- repairs (§3) and urgency ------------------------------------------------------------


class RepairClass:
    URGENT = "urgent"  # 急修
    GENERAL = "general"  # 一般

    ALL = (URGENT, GENERAL)


# Words that make a repair urgent (§3: elevator, leaks, burst pipes, power cuts and
# leakage, railings, fire, flooding, broken slabs and stair treads, blocked downpipes).
URGENT_KEYWORDS: tuple[str, ...] = (
    "电梯",
    "困人",
    "漏水",
    "爆管",
    "水管爆",
    "停水",
    "没水",
    "停电",
    "漏电",
    "跳闸",
    "栏杆",
    "护栏",
    "火",
    "冒烟",
    "煤气",
    "燃气",
    "水浸",
    "淹",
    "楼板",
    "踏步",
    "下水管堵",
    "危险",
)


@dataclass(frozen=True, slots=True)
class Suggestion:
    repair_class: str
    because: str  # e.g. "IVR: urgent repair; words: 电梯, 漏水"


def suggest_repair_class(
    *, ivr_tag: str | None, texts: Iterable[str], keywords: Iterable[str]
) -> Suggestion:
    """Urgent if the caller chose the urgent-repair option or said an urgent word.

    Only a suggestion: the agent confirms or overrules it, because a word like 火 also
    occurs in 火车 and a resident may pick the urgent option for a dripping tap.
    """
    reasons: list[str] = []
    if ivr_tag == RepairClass.URGENT:
        reasons.append("IVR: urgent repair")
    said = "".join(t.replace(" ", "") for t in texts)
    heard = [word for word in keywords if word and word in said]
    if heard:
        reasons.append("words: " + ", ".join(heard))
    if reasons:
        return Suggestion(RepairClass.URGENT, "; ".join(reasons))
    return Suggestion(RepairClass.GENERAL, "no urgent choice or word")


# -- deadlines (§2-5) --------------------------------------------------------------------


class Rule:
    ON_SITE = "on-site"  # urgent repair: technician on site
    FIXED = "fixed"  # repair fixed (urgent 24 h, general 72 h)
    REPLY = "reply"  # inquiry not answered on the call
    PRICE_REVIEW = "price-review"  # job not on the price list
    COMPLAINT_ON_SITE = "complaint-on-site"  # complaint about something happening now
    CALL_BACK = "call-back"  # 回访 due

    ALL = (ON_SITE, FIXED, REPLY, PRICE_REVIEW, COMPLAINT_ON_SITE, CALL_BACK)
    LABELS: ClassVar[Mapping[str, str]] = {
        ON_SITE: "急修到场",
        FIXED: "维修完成",
        REPLY: "咨询回复",
        PRICE_REVIEW: "报价审核",
        COMPLAINT_ON_SITE: "投诉到场",
        CALL_BACK: "回访",
    }


@dataclass(frozen=True)
class ServiceRules:
    """The deadlines and words of the service standards, overridable in ``[rules]``."""

    urgent_on_site_min: float = 120.0  # 急修: technician on site within 2 hours
    urgent_fixed_h: float = 24.0  # 急修: repaired within 24 hours
    general_fixed_h: float = 72.0  # 一般: repaired within 72 hours
    inquiry_reply_min: float = 5.0  # 咨询 not answered at once: reply within 5 minutes
    price_review_min: float = 15.0  # not on the price list: reviewed within 15 minutes
    complaint_on_site_min: float = 3.0  # complaint about an event on the premises
    callback_due_h: float = 24.0  # 回访 after a repair or complaint is resolved
    callback_retry_h: float = 4.0  # a call-back that did not reach the resident, again
    callback_max_attempts: int = 3  # then a standard letter, and the call-back is settled
    warn_fraction: float = 0.2  # "near" when this share of the time is left
    urgent_keywords: tuple[str, ...] = URGENT_KEYWORDS

    def span(self, rule: str, *, repair_class: str | None = None) -> timedelta:
        if rule == Rule.ON_SITE:
            return timedelta(minutes=self.urgent_on_site_min)
        if rule == Rule.FIXED:
            hours = (
                self.urgent_fixed_h if repair_class == RepairClass.URGENT else self.general_fixed_h
            )
            return timedelta(hours=hours)
        if rule == Rule.REPLY:
            return timedelta(minutes=self.inquiry_reply_min)
        if rule == Rule.PRICE_REVIEW:
            return timedelta(minutes=self.price_review_min)
        if rule == Rule.COMPLAINT_ON_SITE:
            return timedelta(minutes=self.complaint_on_site_min)
        if rule == Rule.CALL_BACK:
            return timedelta(hours=self.callback_due_h)
        raise ValueError(f"unknown deadline rule {rule!r}")


@dataclass(frozen=True, slots=True)
class DeadlineSpec:
    rule: str
    starts_at: datetime
    due_at: datetime
    warn_at: datetime


def deadline(rules: ServiceRules, rule: str, starts_at: datetime, **kw: str | None) -> DeadlineSpec:
    """One deadline, due ``span`` after ``starts_at``."""
    return deadline_at(rules, rule, starts_at, starts_at + rules.span(rule, **kw))


def deadline_at(
    rules: ServiceRules, rule: str, starts_at: datetime, due_at: datetime
) -> DeadlineSpec:
    """A deadline with a given due time; "near" when ``warn_fraction`` of it is left."""
    return DeadlineSpec(
        rule, starts_at, due_at, due_at - (due_at - starts_at) * rules.warn_fraction
    )


def repair_deadlines(
    rules: ServiceRules, repair_class: str, reported_at: datetime
) -> list[DeadlineSpec]:
    """Counted from the call (§3): urgent on site in 2 h and fixed in 24 h; general 72 h."""
    specs = [deadline(rules, Rule.FIXED, reported_at, repair_class=repair_class)]
    if repair_class == RepairClass.URGENT:
        specs.insert(0, deadline(rules, Rule.ON_SITE, reported_at))
    return specs


# -- call-backs (§5) -----------------------------------------------------------------------


class CallBackReason:
    SATISFACTION = "satisfaction"  # after a repair or complaint is resolved
    PROMISED_REPLY = "promised-reply"  # "we will call you back"
    QUEUED = "queued"  # the resident chose a call-back instead of waiting in the queue

    ALL = (SATISFACTION, PROMISED_REPLY, QUEUED)


class CallBackStatus:
    DUE = "due"
    DONE = "done"  # reached, outcome recorded
    UNREACHABLE = "unreachable"  # every try failed; the standard letter was sent
    CANCELLED = "cancelled"  # the case was reopened or cancelled first

    SETTLED = (DONE, UNREACHABLE)
    ALL = (DUE, DONE, UNREACHABLE, CANCELLED)


class Outcome:
    REACHED = "reached"
    NO_ANSWER = "no-answer"
    BUSY = "busy"
    FAILED = "failed"

    ALL = (REACHED, NO_ANSWER, BUSY, FAILED)


class Satisfaction:
    SATISFIED = "satisfied"  # 满意
    UNSATISFIED = "unsatisfied"  # 不满意

    ALL = (SATISFIED, UNSATISFIED)


# Standard letter-style messages (§5), sent when a call-back cannot reach the resident or
# a problem needs more work.
LETTERS: Mapping[str, str] = {
    "tried-to-reach": (
        "您好！我们曾多次致电回访您反映的问题，未能联系上您。"
        "如您对处理结果有任何意见，请致电物业服务中心，谢谢！"
    ),
    "came-back": "您好！您反映的问题再次出现，我们已重新安排处理，给您带来不便，对不起！",
    "still-needs-work": (
        "您好！您反映的问题仍需进一步处理，我们将尽快完成并与您联系，谢谢您的耐心！"
    ),
}
