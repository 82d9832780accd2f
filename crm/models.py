"""SQLAlchemy mapping of the call-record and case tables.

These classes stay inside the package: ``crm.calls`` turns rows into frozen records before
they leave, so no caller can trigger a lazy load or hold a session open by accident.
The hand-written migrations in ``crm/migrations/versions`` must match this file; a test
compares the migrated schema with this metadata.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Named constraints let later migrations drop or alter them by name on every backend
# (SQLite's batch mode needs names to find them).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC on the Python side.

    SQLite has no timezone type and hands back naive values; PostgreSQL hands back aware
    ones in the session's zone. Normalising here means the rest of the code can compare
    and serialise datetimes without asking which database it runs on. Naive input is
    refused because its zone would be a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused; give a timezone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(AsyncAttrs, DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Call(Base):
    """One inbound call, from channel creation to hang-up; one row per Asterisk channel."""

    __tablename__ = "call"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel_id: Mapped[str] = mapped_column(String, unique=True)
    # in: a resident called us; out: we called them (a case call-back, 回访)
    direction: Mapped[str] = mapped_column(String, default="in", server_default="in")
    caller_number: Mapped[str | None] = mapped_column(String, index=True)
    caller_name: Mapped[str | None] = mapped_column(String)
    dialled_number: Mapped[str | None] = mapped_column(String)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ring_ms: Mapped[int | None] = mapped_column(Integer)
    greeting_played: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    queue: Mapped[str | None] = mapped_column(String, index=True)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the caller chose in the IVR, as ``queue`` or ``queue/tag`` (e.g. repair/urgent),
    # written with the key press: the case reads it whatever happened next (nobody there,
    # a hang-up during the route prompt). A submenu standing for one queue gives the queue.
    choice: Mapped[str | None] = mapped_column(String)
    state: Mapped[str] = mapped_column(String)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String)
    hangup_cause: Mapped[int | None] = mapped_column(Integer)
    hangup_cause_text: Mapped[str | None] = mapped_column(String)

    # lazy="raise": the path is loaded on purpose with selectinload; an accidental lazy
    # load under asyncio would fail far from its cause, so make it fail right here.
    ivr_steps: Mapped[list[IvrStep]] = relationship(
        order_by="IvrStep.seq",
        lazy="raise",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class IvrStep(Base):
    """One key press (or timeout) in a call's walk through the IVR menus."""

    __tablename__ = "ivr_step"
    # The unique (call_id, seq) index also serves lookups by call_id, so call_id needs
    # no index of its own.
    __table_args__ = (UniqueConstraint("call_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    node: Mapped[str] = mapped_column(String)
    input: Mapped[str] = mapped_column(String)
    action: Mapped[str] = mapped_column(String)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Agent(Base):
    """A person who answers calls at a softphone; skills say which queues they serve."""

    __tablename__ = "agent"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String)
    endpoint: Mapped[str] = mapped_column(String, unique=True)  # e.g. PJSIP/1001
    state: Mapped[str] = mapped_column(String)
    state_reason: Mapped[str | None] = mapped_column(String)
    state_since: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    skills: Mapped[list[AgentSkill]] = relationship(
        order_by="AgentSkill.queue", lazy="raise", cascade="all, delete-orphan"
    )


class AgentSkill(Base):
    """An agent serves ``queue``; a higher ``level`` is offered the call first on a tie."""

    __tablename__ = "agent_skill"
    __table_args__ = (UniqueConstraint("agent_id", "queue"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agent.id", ondelete="CASCADE"))
    queue: Mapped[str] = mapped_column(String)
    level: Mapped[int] = mapped_column(Integer)


class AgentStateChange(Base):
    """Every change of an agent's state, with when and why: the basis of agent reports."""

    __tablename__ = "agent_state_change"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agent.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String)
    reason: Mapped[str | None] = mapped_column(String)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("call.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class QueueEntry(Base):
    """One call's stay in one queue: the facts service level, ASA and abandon rate need."""

    __tablename__ = "queue_entry"
    # The calls an agent took (crm.queue_facts.took_call) without reading the table: an
    # agent's search reads the set of them (migration 0008).
    __table_args__ = (Index("ix_queue_entry_agent_call", "agent_id", "call_id", "answered_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"), index=True)
    queue: Mapped[str] = mapped_column(String, index=True)
    tag: Mapped[str | None] = mapped_column(String)  # e.g. urgent / general for repairs
    priority: Mapped[int] = mapped_column(Integer)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id", ondelete="SET NULL"))
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # answered / abandoned / callback / message / timeout / service-stopped / connect-failed
    outcome: Mapped[str | None] = mapped_column(String)
    talk_ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    wrap_up_ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    offers: Mapped[list[AgentOffer]] = relationship(
        order_by="AgentOffer.id", lazy="raise", cascade="all, delete-orphan"
    )


class AgentOffer(Base):
    """One agent's phone ringing for one queue entry, and how that ended."""

    __tablename__ = "agent_offer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[int] = mapped_column(
        ForeignKey("queue_entry.id", ondelete="CASCADE"), index=True
    )
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id", ondelete="SET NULL"))
    endpoint: Mapped[str] = mapped_column(String)
    ring_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # answered / no-answer / busy / failed / unavailable / caller-gone / lost-race / unconfirmed
    outcome: Mapped[str | None] = mapped_column(String)


class QueueCallback(Base):
    """A caller who chose to be called back, keeping their place (original entry time)."""

    __tablename__ = "queue_callback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"), index=True)
    queue: Mapped[str] = mapped_column(String, index=True)
    number: Mapped[str] = mapped_column(String)
    place_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the original entry time
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # waiting / dialling / reached / failed / expired / cancelled
    status: Mapped[str] = mapped_column(String, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    attempt_log: Mapped[list[QueueCallbackAttempt]] = relationship(
        order_by="QueueCallbackAttempt.id", lazy="raise", cascade="all, delete-orphan"
    )


class QueueCallbackAttempt(Base):
    """One try at a call-back: agent first, then the resident."""

    __tablename__ = "queue_callback_attempt"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    callback_id: Mapped[int] = mapped_column(
        ForeignKey("queue_callback.id", ondelete="CASCADE"), index=True
    )
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agent.id", ondelete="SET NULL"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String)  # reached / no-answer / busy / failed


class Message(Base):
    """A message (留言) a caller left; tracked until someone handles it (转告)."""

    __tablename__ = "message"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"), index=True)
    queue: Mapped[str | None] = mapped_column(String)
    reason: Mapped[str] = mapped_column(String)  # asked / no-agents / out-of-hours / ...
    recording: Mapped[str | None] = mapped_column(String)  # Asterisk stored-recording name
    duration_s: Mapped[float | None] = mapped_column(Float)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # passed on (转告)
    handled_by: Mapped[str | None] = mapped_column(String)
    note: Mapped[str | None] = mapped_column(String)
    for_whom: Mapped[str | None] = mapped_column(String)  # the person or department asked for
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("case.id", ondelete="SET NULL"), index=True
    )


class Recording(Base):
    """One audio file of a call: the mixed conversation, one speaker's leg, or a message.

    The row is written when Asterisk starts recording, before any audio exists, so a copy
    that fails later still leaves the link and the reason on the call.
    """

    __tablename__ = "recording"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String)  # mixed / resident / agent / message
    asterisk_name: Mapped[str] = mapped_column(String, unique=True)
    format: Mapped[str] = mapped_column(String)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # recording / pending (to copy) / stored / lost / failed / purged (audio deleted)
    status: Mapped[str] = mapped_column(String, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(String)
    path: Mapped[str | None] = mapped_column(String)  # relative to the recording store
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    duration_s: Mapped[float | None] = mapped_column(Float)
    sample_rate: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String)
    stored_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TranscriptionJob(Base):
    """Speech-to-text of one call's legs; persisted so a restart resumes it."""

    __tablename__ = "transcription_job"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"), unique=True)
    status: Mapped[str] = mapped_column(String, index=True)  # queued / running / done / failed
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(String)
    model: Mapped[str | None] = mapped_column(String)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    audio_s: Mapped[float | None] = mapped_column(Float)
    decode_s: Mapped[float | None] = mapped_column(Float)


class TranscriptSegment(Base):
    """One turn: a speaker's utterance, timed from the start of the conversation."""

    __tablename__ = "transcript_segment"
    __table_args__ = (UniqueConstraint("call_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"))
    recording_id: Mapped[int | None] = mapped_column(
        ForeignKey("recording.id", ondelete="SET NULL")
    )
    seq: Mapped[int] = mapped_column(Integer)
    speaker: Mapped[str] = mapped_column(String)  # resident / agent
    start_ms: Mapped[int] = mapped_column(Integer)
    end_ms: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(String)

    words: Mapped[list[TranscriptWord]] = relationship(
        order_by="TranscriptWord.seq",
        lazy="raise",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class TranscriptWord(Base):
    """One recognised word with its time, so a reviewer can jump to the moment it was said."""

    __tablename__ = "transcript_word"
    __table_args__ = (UniqueConstraint("segment_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    segment_id: Mapped[int] = mapped_column(ForeignKey("transcript_segment.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    word: Mapped[str] = mapped_column(String)
    start_ms: Mapped[int] = mapped_column(Integer)
    end_ms: Mapped[int] = mapped_column(Integer)
    conf: Mapped[float] = mapped_column(Float)


# -- the CRM: residents and their cases ---------------------------------------------------


class Room(Base):
    """A unit of the estate (栋号 + 房号); the roster import fills this table.

    Work orders and residents must name a known room, so a typo in a building number is
    refused at the desk instead of sending a technician to a door that does not exist.
    """

    __tablename__ = "room"
    __table_args__ = (UniqueConstraint("building", "room"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    building: Mapped[str] = mapped_column(String)
    room: Mapped[str] = mapped_column(String)


class Resident(Base):
    """A person who lives in (or owns) a unit; or a caller not yet identified.

    A caller whose number is not in the directory becomes a contact with ``complete``
    false, to be completed by the agent; several residents may share one phone.
    """

    __tablename__ = "resident"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str | None] = mapped_column(String)
    room_id: Mapped[int | None] = mapped_column(
        ForeignKey("room.id", ondelete="RESTRICT"), index=True
    )
    complete: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    source: Mapped[str] = mapped_column(String)  # import / call / api
    note: Mapped[str | None] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    phones: Mapped[list[ResidentPhone]] = relationship(
        order_by="ResidentPhone.id", lazy="raise", cascade="all, delete-orphan"
    )


class ResidentPhone(Base):
    """One of a resident's numbers, normalised; a number may belong to several residents."""

    __tablename__ = "resident_phone"
    __table_args__ = (UniqueConstraint("resident_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String, index=True)


class Case(Base):
    """One matter a resident raised (来电接待记录 and what came of it), whatever the channel.

    ``version`` grows with every change; an edit names the version it read and is refused
    with 409 if someone changed the case since, so two agents cannot overwrite each other.
    """

    __tablename__ = "case"
    __table_args__ = (Index("ix_case_kind_status", "kind", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String)  # inquiry / repair / complaint / emergency / message
    subtype: Mapped[str | None] = mapped_column(String)
    channel: Mapped[str] = mapped_column(String)  # phone / email / letter / walk-in / chat
    status: Mapped[str] = mapped_column(String, index=True)
    owner_agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("agent.id", ondelete="SET NULL"), index=True
    )
    resident_id: Mapped[int | None] = mapped_column(
        ForeignKey("resident.id", ondelete="SET NULL"), index=True
    )
    phone: Mapped[str | None] = mapped_column(String, index=True)  # the number to reply to
    room_id: Mapped[int | None] = mapped_column(ForeignKey("room.id", ondelete="RESTRICT"))
    summary: Mapped[str] = mapped_column(String)
    detail: Mapped[str | None] = mapped_column(Text)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reopened: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class CaseCall(Base):
    """A call that belongs to a case: the one that opened it, later ones, call-backs."""

    __tablename__ = "case_call"
    __table_args__ = (UniqueConstraint("case_id", "call_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id", ondelete="CASCADE"))
    call_id: Mapped[int] = mapped_column(ForeignKey("call.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String)  # opened / follow-up / call-back
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Deadline(Base):
    """One promise with a time on a case (service standards §2-5), kept in the database so
    the watcher finds it again after a restart.
    """

    __tablename__ = "deadline"
    __table_args__ = (Index("ix_deadline_open_due", "met_at", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id", ondelete="CASCADE"), index=True)
    # on-site / fixed / reply / price-review / complaint-on-site / call-back
    rule: Mapped[str] = mapped_column(String)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    warn_at: Mapped[datetime] = mapped_column(UTCDateTime)
    met_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # "near" event raised
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # "passed" event raised


class RepairOrder(Base):
    """The work order (维修服务任务单) of a repair case; money in fen (分) to stay exact."""

    __tablename__ = "repair_order"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id", ondelete="CASCADE"), unique=True)
    reporter: Mapped[str | None] = mapped_column(String)  # 申报人
    room_id: Mapped[int | None] = mapped_column(ForeignKey("room.id", ondelete="RESTRICT"))
    phone: Mapped[str | None] = mapped_column(String)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    appointment_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    key_left: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    fault: Mapped[str] = mapped_column(String)
    work_done: Mapped[str | None] = mapped_column(String)
    materials: Mapped[str | None] = mapped_column(String)
    material_cost_fen: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    labour_cost_fen: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    technician: Mapped[str | None] = mapped_column(String)
    on_site_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    verdict: Mapped[str | None] = mapped_column(String)  # satisfied / unsatisfied
    # urgent (急修) / general (一般); suggested from the IVR and the transcript, then
    # confirmed by the agent, who may overrule the suggestion.
    repair_class: Mapped[str] = mapped_column(String)
    suggested_class: Mapped[str | None] = mapped_column(String)
    suggested_because: Mapped[str | None] = mapped_column(String)
    class_confirmed_by: Mapped[str | None] = mapped_column(String)
    class_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    on_price_list: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    quoted_fen: Mapped[int | None] = mapped_column(Integer)
    price_reviewed_by: Mapped[str | None] = mapped_column(String)
    price_reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    price_agreed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # resident agreed
    rework_of: Mapped[int | None] = mapped_column(
        ForeignKey("repair_order.id", ondelete="SET NULL")
    )  # warranty: came back for poor quality, redone free of charge


class Complaint(Base):
    """The complaint part of a complaint case: its classification and current step."""

    __tablename__ = "complaint"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id", ondelete="CASCADE"), unique=True)
    nature: Mapped[str | None] = mapped_column(String)  # valid (有效) / communication (沟通性)
    sort: Mapped[str | None] = mapped_column(String)  # help / inquiry / suggestion / venting
    subject: Mapped[str | None] = mapped_column(String)  # equipment / attitude / quality / incident
    reasonable: Mapped[bool | None] = mapped_column(Boolean)
    on_premises: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    serious: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    responsible: Mapped[str | None] = mapped_column(String)  # department / person (定责)
    step: Mapped[str] = mapped_column(String)  # the step done last
    causes: Mapped[str | None] = mapped_column(String)  # 总结
    prevention: Mapped[str | None] = mapped_column(String)


class ComplaintStep(Base):
    """One step of the eight done, by whom and when; a reopened complaint adds rows."""

    __tablename__ = "complaint_step"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    complaint_id: Mapped[int] = mapped_column(
        ForeignKey("complaint.id", ondelete="CASCADE"), index=True
    )
    step: Mapped[str] = mapped_column(String)
    by: Mapped[str] = mapped_column(String)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(String)


class CaseCallBack(Base):
    """A call-back (回访) owed to the resident of a case: satisfaction or a promised reply."""

    __tablename__ = "case_callback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(String)  # satisfaction / promised-reply / queued
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    status: Mapped[str] = mapped_column(String, index=True)  # due / done / unreachable / cancelled
    reached: Mapped[bool | None] = mapped_column(Boolean)
    satisfaction: Mapped[str | None] = mapped_column(String)  # satisfied / unsatisfied
    remarks: Mapped[str | None] = mapped_column(String)
    letter: Mapped[str | None] = mapped_column(String)  # standard letter sent when unreachable
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_by: Mapped[str | None] = mapped_column(String)
    queue_callback_id: Mapped[int | None] = mapped_column(
        ForeignKey("queue_callback.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CaseCallBackAttempt(Base):
    """One try at a call-back, with its outbound call when it was dialled from the case."""

    __tablename__ = "case_callback_attempt"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    callback_id: Mapped[int] = mapped_column(
        ForeignKey("case_callback.id", ondelete="CASCADE"), index=True
    )
    call_id: Mapped[int | None] = mapped_column(ForeignKey("call.id", ondelete="SET NULL"))
    by: Mapped[str] = mapped_column(String)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String)  # reached / no-answer / busy / failed


class AuditEntry(Base):
    """Who changed what, when, from which value to which: the case timeline is made of these."""

    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entry_entity", "entity", "entity_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("case.id", ondelete="CASCADE"), index=True
    )
    entity: Mapped[str] = mapped_column(String)  # case / repair-order / complaint / ...
    entity_id: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String)  # created / changed / status / step / ...
    field: Mapped[str | None] = mapped_column(String)
    old: Mapped[str | None] = mapped_column(Text)
    new: Mapped[str | None] = mapped_column(Text)
    by: Mapped[str] = mapped_column(String)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


# -- staff: who may use the hotline's screens and API -------------------------------------


class StaffUser(Base):
    """A person who signs in: an agent (linked to their ``agent`` row), supervisor or admin.

    Only the argon2 hash of the password is kept. ``failed_logins`` counts consecutive
    wrong passwords; reaching the limit sets ``locked_until``.
    """

    __tablename__ = "staff_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String, unique=True)
    role: Mapped[str] = mapped_column(String)  # agent / supervisor / admin
    # One user per agent; agents are deactivated, never deleted, so the link holds.
    agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("agent.id", ondelete="RESTRICT"), unique=True
    )
    password_hash: Mapped[str] = mapped_column(String)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ApiToken(Base):
    """A bearer token for an integration; only the sha256 of its secret is kept.

    A name is taken while a token of that name is unrevoked (the partial unique index), so
    a revoked token's name can be issued again and the old rows stay for the record.
    """

    __tablename__ = "api_token"
    __table_args__ = (
        Index(
            "ix_api_token_unrevoked_name",
            "name",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String)
    role: Mapped[str] = mapped_column(String)
    secret_hash: Mapped[str] = mapped_column(String, unique=True)  # sha256 hex
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StaffSession(Base):
    """A signed-in browser: the sha256 of its cookie's secret, its CSRF value, its times."""

    __tablename__ = "staff_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("staff_user.id", ondelete="CASCADE"), index=True
    )
    secret_hash: Mapped[str] = mapped_column(String, unique=True)  # sha256 hex
    # Not a credential on its own (useless without the cookie), and the page must echo it.
    csrf: Mapped[str] = mapped_column(String)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)  # absolute


class AccessAudit(Base):
    """One access decision: who (user or token), from where, did what to what, and the answer."""

    __tablename__ = "access_audit"
    __table_args__ = (Index("ix_access_audit_user_at", "user_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String)  # "user:3", "token:crm-sync", "anonymous"
    address: Mapped[str] = mapped_column(String)  # as given (the HTTP layer masks it)
    action: Mapped[str] = mapped_column(String)
    target: Mapped[str] = mapped_column(String)
    granted: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String, default="", server_default="")
