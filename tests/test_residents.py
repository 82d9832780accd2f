"""The resident directory and its roster import, on SQLite and PostgreSQL.

Every assertion reads back what the code stored (through the directory or plain SQL) or
printed, never what the test handed in.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from crm.db import make_sessionmaker
from crm.exceptions import Conflict, InvalidInput, NotFound, StorageError
from crm.models import AuditEntry, Resident, ResidentPhone, Room
from crm.residents import ResidentDirectory, ResidentRecord
from crm.roster_import import ImportReport, Rejected, import_roster
from telephony.cli import main
from tests.conftest import ROOT
from tests.databases import one_connection_engine

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
NOT_A_PHONE = "is not a phone number (mobile, or landline with area code)"

# A small estate as its office keeps it: Chinese headers, numbers written as people write
# them. 张伟 and 李娜 (a couple in 3-201) share the flat's phone; 黄敏 in 12A-302 is 张伟's
# mother and gave the same number.
ROSTER = """栋号,房号,姓名,电话
3,201,张伟,13800138000
3,201,李娜,13800138000；139-1234-5678
3,202,王芳,021-62345678
5,1101,刘洋,139 1111 2222
5,1102,陈静,"13611112222, 13633334444"
12A,301,赵磊,+8613755556666
12A,302,黄敏,13800138000
"""
SHARED = "13800138000"


class FixedClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


@dataclasses.dataclass
class Crm:
    directory: ResidentDirectory
    sessions: async_sessionmaker[AsyncSession]
    engine: AsyncEngine
    clock: FixedClock

    async def count(self, model: Any) -> int:
        async with self.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)

    async def counts(self) -> dict[str, int]:
        return {
            "rooms": await self.count(Room),
            "residents": await self.count(Resident),
            "phones": await self.count(ResidentPhone),
            "audit": await self.count(AuditEntry),
        }

    async def audit(self, resident_id: int) -> list[tuple[str, str | None, str | None, str, str]]:
        """(action, field, old, new, by) of a resident's entries, in order written."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.entity == "resident", AuditEntry.entity_id == resident_id)
                .order_by(AuditEntry.id)
            )
            return [(a.action, a.field, a.old, a.new or "", a.by) for a in rows]

    async def everyone(self) -> dict[tuple[str | None, str | None, str | None], ResidentRecord]:
        found, total = await self.directory.list(limit=500)
        assert total == len(found)
        return {(r.building, r.room, r.name): r for r in found}


@pytest.fixture
async def crm(migrated_db_url: str) -> AsyncIterator[Crm]:
    engine = one_connection_engine(migrated_db_url)
    sessions = make_sessionmaker(engine)
    clock = FixedClock(T0)
    yield Crm(ResidentDirectory(sessions, clock), sessions, engine, clock)
    await engine.dispose()


def write(tmp_path: Path, text: str, name: str = "roster.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


# -- roster import --------------------------------------------------------------------


async def test_a_realistic_roster_is_imported_with_its_rooms(crm: Crm, tmp_path: Path) -> None:
    report = await import_roster(crm.directory, write(tmp_path, ROSTER), by="物业前台")
    assert report == ImportReport(added=7, updated=0, unchanged=0, rejected=[])
    everyone = await crm.everyone()
    assert {key: r.phones for key, r in everyone.items()} == {
        ("3", "201", "张伟"): (SHARED,),
        ("3", "201", "李娜"): (SHARED, "13912345678"),
        ("3", "202", "王芳"): ("02162345678",),
        ("5", "1101", "刘洋"): ("13911112222",),
        ("5", "1102", "陈静"): ("13611112222", "13633334444"),
        ("12A", "301", "赵磊"): ("13755556666",),
        ("12A", "302", "黄敏"): (SHARED,),
    }
    assert all(r.complete and r.source == "import" and r.version == 1 for r in everyone.values())
    assert all(r.created_at == T0 for r in everyone.values())
    rooms = await crm.directory.rooms()
    assert sorted((r.building, r.room) for r in rooms) == [
        ("12A", "301"),
        ("12A", "302"),
        ("3", "201"),
        ("3", "202"),
        ("5", "1101"),
        ("5", "1102"),
    ]
    zhang = everyone[("3", "201", "张伟")]
    assert await crm.audit(zhang.id) == [
        ("created", "name", None, "张伟", "物业前台"),
        ("created", "room", None, "3-201", "物业前台"),
        ("created", "phones", None, SHARED, "物业前台"),
        ("created", "complete", None, "true", "物业前台"),
    ]


async def test_importing_the_same_roster_again_changes_nothing(crm: Crm, tmp_path: Path) -> None:
    path = write(tmp_path, ROSTER)
    await import_roster(crm.directory, path)
    before, first = await crm.counts(), await crm.everyone()
    crm.clock.at = T0 + timedelta(days=1)
    again = await import_roster(crm.directory, path)
    assert again == ImportReport(added=0, updated=0, unchanged=7, rejected=[])
    assert await crm.counts() == before
    assert await crm.everyone() == first  # same versions, same updated_at


async def test_a_row_with_other_phones_replaces_that_residents_phones(
    crm: Crm, tmp_path: Path
) -> None:
    await import_roster(crm.directory, write(tmp_path, ROSTER))
    changed = ROSTER.replace("3,201,张伟,13800138000", "3,201,张伟,13500001111 / 13800138000")
    crm.clock.at = T0 + timedelta(days=1)
    report = await import_roster(crm.directory, write(tmp_path, changed, "v2.csv"), by="李经理")
    assert report == ImportReport(added=0, updated=1, unchanged=6, rejected=[])
    everyone = await crm.everyone()
    zhang = everyone[("3", "201", "张伟")]
    assert zhang.phones == ("13500001111", SHARED)
    assert (zhang.version, zhang.updated_at) == (2, T0 + timedelta(days=1))
    assert (await crm.audit(zhang.id))[-1] == (
        "changed",
        "phones",
        SHARED,
        f"13500001111, {SHARED}",
        "李经理",
    )
    li = everyone[("3", "201", "李娜")]
    assert (li.version, li.phones) == (1, (SHARED, "13912345678"))
    # The same numbers in another order are the same phones.
    reordered = ROSTER.replace("13800138000；139-1234-5678", "13912345678、13800138000")
    again = await import_roster(crm.directory, write(tmp_path, reordered, "v3.csv"))
    assert (again.updated, again.unchanged) == (1, 6)  # 张伟 back to one phone; 李娜 unchanged


BAD_ROWS = "\n".join(
    [
        "building,room,name,phones",  # 1
        "3,201,张伟,13800138000",  # 2  good
        "3,201,李四,123",  # 3
        "3,202,,13900139000",  # 4
        "3,203,<script>alert(1)</script>,13700137000",  # 5
        "",  # 6  blank: skipped, still counted
        "3,201,张伟,13900000000",  # 7
        "3栋!,101,王五,13600136000",  # 8
        "5,1101,赵六,1.38001E+10",  # 9
        "5,1102,钱七,13800138000,13900139000",  # 10
        '5,1103,孙八,"13511112222；13522223333"',  # 11 good
        "5,1104,周九,13511112222;4444",  # 12
        "5,1105",  # 13
        '5,1106,"吴\n十",13511112222',  # 14-15: a quoted cell spanning two lines
        "5,1107,郑十一,13511112222",  # 16 good, after a cell spanning two lines
        "",
    ]
)


async def test_bad_rows_are_rejected_with_their_line_and_reason_and_the_rest_imported(
    crm: Crm, tmp_path: Path
) -> None:
    report = await import_roster(crm.directory, write(tmp_path, BAD_ROWS))
    assert report.rejected == [
        Rejected(3, f"phones[1]: '123' {NOT_A_PHONE}"),
        Rejected(4, "name: is required"),
        Rejected(5, "name: must be a person's name (no markup or symbols like < > ; =)"),
        Rejected(7, "duplicate of line 2"),
        Rejected(8, "building: must be a building number like 3 or 12A, got '3栋!'"),
        Rejected(
            9,
            "phones[1]: '1.38001E+10' is a number Excel shortened: format the phone column "
            "as text and export again",
        ),
        Rejected(
            10,
            "row: 5 cells but the header has 4; separate phone numbers with ; or 、 "
            "(a comma starts a new cell)",
        ),
        Rejected(12, f"phones[2]: '4444' {NOT_A_PHONE}"),
        Rejected(13, "name: is required"),
        Rejected(14, "name: must be on one line (no line breaks or tabs)"),
    ]
    assert (report.added, report.updated, report.unchanged) == (3, 0, 0)
    everyone = await crm.everyone()
    assert {key: r.phones for key, r in everyone.items()} == {
        ("3", "201", "张伟"): ("13800138000",),
        ("5", "1103", "孙八"): ("13511112222", "13522223333"),
        ("5", "1107", "郑十一"): ("13511112222",),
    }
    assert sorted((r.building, r.room) for r in await crm.directory.rooms()) == [
        ("3", "201"),
        ("5", "1103"),
        ("5", "1107"),
    ]


NAMES_REFUSED = [
    ("张\t伟", "one line"),
    ("张伟\u202e", "U+202E"),  # RIGHT-TO-LEFT OVERRIDE: shows the rest reversed
    ("张\u2066伟", "U+2066"),  # an isolate
    ("张\u200b伟", "invisible"),  # zero-width space
    ("张\u200c伟", "invisible"),
    ("张\u200d伟", "invisible"),
    ("张\u2060伟", "invisible"),  # word joiner
    ("张\ufeff伟", "invisible"),  # zero-width no-break space (a BOM inside the text)
    ("张\x85伟", "U+0085"),  # NEL, a C1 control
    ("@SUM(1+1)", "formula"),
    ("+86 张伟", "formula"),
    ("-2+3", "formula"),
    ("=1+1", "formula"),
]


@pytest.mark.parametrize(("name", "reason"), NAMES_REFUSED)
async def test_a_roster_name_against_the_rules_of_names_is_a_rejected_line(
    crm: Crm, tmp_path: Path, name: str, reason: str
) -> None:
    """The same rules as every name typed in (crm.validation.name_text)."""
    roster = f'building,room,name,phones\n3,201,"{name}",13800138000\n3,202,李四,13900139000\n'
    report = await import_roster(crm.directory, write(tmp_path, roster))
    (rejected,) = report.rejected
    assert rejected.line == 2
    assert rejected.reason.startswith("name: ")
    assert reason in rejected.reason
    assert report.added == 1
    names = {r.name for r in (await crm.everyone()).values()}
    assert names == {"李四"}


@pytest.mark.parametrize(("name", "reason"), NAMES_REFUSED)
async def test_a_resident_name_against_the_rules_of_names_is_refused_and_nothing_stored(
    crm: Crm, tmp_path: Path, name: str, reason: str
) -> None:
    await import_roster(
        crm.directory, write(tmp_path, "building,room,name,phones\n3,201,李四,13900139000\n")
    )
    before = await crm.counts()
    with pytest.raises(InvalidInput) as refused:
        await crm.directory.create(
            name=name, building="3", room="201", phones=["13800138000"], by="agent:1"
        )
    assert (refused.value.field, reason in refused.value.reason) == ("name", True)
    (resident,) = (await crm.everyone()).values()
    with pytest.raises(InvalidInput) as renamed:
        await crm.directory.update(resident.id, version=resident.version, by="agent:1", name=name)
    assert renamed.value.field == "name"
    assert await crm.counts() == before


@pytest.mark.parametrize(
    "by", ["agent:1\n伪造的第二行", "agent:1\u200b", "\tagent:1 x\ty", "agent:1\u202e", "@agent"]
)
async def test_who_made_a_change_follows_the_rules_of_names(crm: Crm, by: str) -> None:
    """The audit trail's ``by`` shows one honest line: no forged second entry, no reordering."""
    with pytest.raises(InvalidInput) as refused:
        await crm.directory.create(
            name="张伟", building="3", room="201", phones=["13800138000"], by=by
        )
    assert refused.value.field == "by"
    assert await crm.counts() == {"rooms": 0, "residents": 0, "phones": 0, "audit": 0}


@pytest.mark.parametrize(
    "header",
    [
        "楼栋,房间,姓名,电话",  # the office's own words, not ours
        "building,room,name",
        "",
    ],
)
async def test_a_file_without_the_four_columns_is_refused_whole(
    crm: Crm, tmp_path: Path, header: str
) -> None:
    path = write(tmp_path, f"{header}\n3,201,张伟,13800138000\n" if header else "")
    with pytest.raises(InvalidInput) as refused:
        await import_roster(crm.directory, path)
    assert refused.value.field == "file"
    assert ("is empty" if not header else "no column for") in refused.value.reason
    assert await crm.counts() == {"rooms": 0, "residents": 0, "phones": 0, "audit": 0}


async def test_an_unreadable_file_is_refused(crm: Crm, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as missing:
        await import_roster(crm.directory, tmp_path / "nope.csv")
    assert missing.value.field == "file"
    assert "cannot read" in missing.value.reason
    workbook = tmp_path / "roster.xlsx"
    workbook.write_bytes(b"PK\x03\x04" + bytes(range(256)))
    with pytest.raises(InvalidInput, match="Excel workbook"):
        await import_roster(crm.directory, workbook)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "utf-16"])
async def test_excel_exports_in_any_of_its_encodings_are_read(
    crm: Crm, tmp_path: Path, encoding: str
) -> None:
    text = ROSTER
    if encoding == "utf-16":  # Excel's "Unicode text": tab-separated
        text = ROSTER.replace('"13611112222, 13633334444"', "13611112222, 13633334444")
        text = text.replace(",", "\t").replace("\t 136", ", 136")
    data = text.encode(encoding)
    if encoding == "gb18030":
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")  # really not UTF-8: the fallback is what reads it
    path = tmp_path / "roster.csv"
    path.write_bytes(data)
    report = await import_roster(crm.directory, path)
    assert (report.added, report.rejected) == (7, [])
    names = sorted(name for _, _, name in await crm.everyone() if name)
    assert names == sorted(["张伟", "李娜", "王芳", "刘洋", "陈静", "赵磊", "黄敏"])


async def test_a_dry_run_reports_the_changes_and_writes_nothing(crm: Crm, tmp_path: Path) -> None:
    path = write(tmp_path, ROSTER)
    report = await import_roster(crm.directory, path, dry_run=True)
    assert report == ImportReport(added=7, updated=0, unchanged=0, rejected=[])
    assert await crm.counts() == {"rooms": 0, "residents": 0, "phones": 0, "audit": 0}
    await import_roster(crm.directory, path)
    before, stored = await crm.counts(), await crm.everyone()
    moved_on = ROSTER.replace("12A,302,黄敏,13800138000", "12A,302,黄敏,13322224444")
    changed = write(tmp_path, moved_on + "7,101,新住户,13322223333\n", "v2.csv")
    report = await import_roster(crm.directory, changed, dry_run=True)
    assert report == ImportReport(added=1, updated=1, unchanged=6, rejected=[])
    assert await crm.counts() == before
    assert await crm.everyone() == stored


async def test_a_database_failure_imports_nothing(crm: Crm, tmp_path: Path) -> None:
    async with crm.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'audit refused'; END $$"
            )
            await connection.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON audit_entry "
                "FOR EACH ROW EXECUTE FUNCTION refuse()"
            )
        else:
            await connection.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON audit_entry "
                "BEGIN SELECT RAISE(ABORT, 'audit refused'); END"
            )
    with pytest.raises(StorageError):
        await import_roster(crm.directory, write(tmp_path, ROSTER))
    assert await crm.counts() == {"rooms": 0, "residents": 0, "phones": 0, "audit": 0}


async def test_ten_thousand_rows_import_in_seconds(crm: Crm, tmp_path: Path) -> None:
    lines = ["building,room,name,phones"]
    for i in range(10_000):
        building, room = f"{i // 1000 + 1}", f"{(i // 4) % 250 + 1:04d}"
        lines.append(f"{building},{room},住户{i},1{3 + i % 7}{i:09d}")
    path = write(tmp_path, "\n".join(lines) + "\n")
    started = time.perf_counter()
    report = await import_roster(crm.directory, path)
    first_s = time.perf_counter() - started
    assert (report.added, report.rejected) == (10_000, [])
    started = time.perf_counter()
    again = await import_roster(crm.directory, path)
    again_s = time.perf_counter() - started
    assert again.unchanged == 10_000
    counts = await crm.counts()
    assert (counts["residents"], counts["phones"], counts["rooms"]) == (10_000, 10_000, 2_500)
    # "A few seconds" on a developer machine; the bound leaves room for a busy CI box.
    assert first_s < 20, first_s
    assert again_s < 10, again_s


# -- the directory -------------------------------------------------------------------


async def test_a_number_shared_by_residents_finds_them_all_complete_ones_first(
    crm: Crm, tmp_path: Path
) -> None:
    contact = await crm.directory.contact_for("13344445555", at=T0)
    await import_roster(crm.directory, write(tmp_path, ROSTER))
    found = await crm.directory.find_by_phone("+86 138-0013-8000")
    assert [(r.building, r.room, r.name) for r in found] == [
        ("3", "201", "张伟"),
        ("3", "201", "李娜"),
        ("12A", "302", "黄敏"),
    ]
    son = await crm.directory.create(
        name="张小伟", building="3", room="201", phones=["13344445555"], by="agent:3"
    )
    assert son.id > contact.id
    assert [r.id for r in await crm.directory.find_by_phone("13344445555")] == [son.id, contact.id]
    assert await crm.directory.find_by_phone("13399999999") == []


async def test_an_unknown_caller_becomes_one_incomplete_contact_however_often_they_call(
    crm: Crm,
) -> None:
    first = await crm.directory.contact_for("139 0000 1111", at=T0)
    again = await crm.directory.contact_for("13900001111", at=T0 + timedelta(hours=1))
    assert again == first
    # Calls from another new number ending at the same moment (a burst of redials).
    burst = await asyncio.gather(
        *(crm.directory.contact_for("13900002222", at=T0) for _ in range(8))
    )
    assert len({contact.id for contact in burst}) == 1
    assert await crm.count(Resident) == 2
    stored = await crm.directory.get(first.id)
    assert (stored.name, stored.building, stored.room, stored.phones) == (
        None,
        None,
        None,
        ("13900001111",),
    )
    assert (stored.complete, stored.source, stored.created_at) == (False, "call", T0)
    assert await crm.audit(first.id) == [
        ("created", "phones", None, "13900001111", "system"),
        ("created", "complete", None, "false", "system"),
    ]
    with pytest.raises(InvalidInput) as withheld:
        await crm.directory.contact_for("anonymous", at=T0)
    assert withheld.value.field == "number"


async def test_a_known_caller_is_found_not_created(crm: Crm, tmp_path: Path) -> None:
    await import_roster(crm.directory, write(tmp_path, ROSTER))
    before = await crm.counts()
    caller = await crm.directory.contact_for(SHARED, at=T0)
    assert (caller.name, caller.complete) == ("张伟", True)
    assert await crm.counts() == before


async def test_an_agent_completes_a_contact_from_a_call(crm: Crm) -> None:
    await crm.directory.add_room("3", "201")
    contact = await crm.directory.contact_for("13900001111", at=T0)
    crm.clock.at = T0 + timedelta(minutes=5)
    done = await crm.directory.update(
        contact.id, version=1, by="agent:7", name="周敏", building="3", room="201"
    )
    stored = await crm.directory.get(contact.id)
    assert stored == done
    assert (stored.name, stored.building, stored.room, stored.complete) == (
        "周敏",
        "3",
        "201",
        True,
    )
    assert (stored.version, stored.updated_at, stored.source) == (2, crm.clock.at, "call")
    assert (await crm.audit(contact.id))[2:] == [
        ("changed", "name", None, "周敏", "agent:7"),
        ("changed", "room", None, "3-201", "agent:7"),
        ("changed", "complete", "false", "true", "agent:7"),
    ]


async def test_every_change_is_audited_old_to_new_and_versioned(crm: Crm) -> None:
    await crm.directory.add_room("3", "201")
    await crm.directory.add_room("5", "1102")
    resident = await crm.directory.create(
        name="张伟", building="3", room="201", phones=["13800138000"], by="agent:1"
    )
    changed = await crm.directory.update(
        resident.id,
        version=1,
        by="agent:2",
        name="张 伟",
        building="5",
        room="1102",
        phones=["13900139000", "139-0013-9000", "02162345678"],
        note="  晚上八点后再打  ",
    )
    stored = await crm.directory.get(resident.id)
    assert stored == changed
    assert (stored.name, stored.building, stored.room) == ("张 伟", "5", "1102")
    assert (stored.phones, stored.note, stored.version) == (
        ("13900139000", "02162345678"),
        "晚上八点后再打",
        2,
    )
    assert (await crm.audit(resident.id))[4:] == [
        ("changed", "name", "张伟", "张 伟", "agent:2"),
        ("changed", "room", "3-201", "5-1102", "agent:2"),
        ("changed", "phones", "13800138000", "13900139000, 02162345678", "agent:2"),
        ("changed", "note", None, "晚上八点后再打", "agent:2"),
    ]
    # Changing nothing is not a new version and leaves no trail.
    same = await crm.directory.update(resident.id, version=2, by="agent:2", name="张 伟")
    assert same.version == 2
    assert len(await crm.audit(resident.id)) == 8


async def test_an_edit_of_a_stale_version_conflicts_and_changes_nothing(crm: Crm) -> None:
    await crm.directory.add_room("3", "201")
    resident = await crm.directory.create(
        name="张伟", building="3", room="201", phones=["13800138000"], by="agent:1"
    )
    await crm.directory.update(resident.id, version=1, by="agent:1", note="有老人")
    before, trail = await crm.directory.get(resident.id), await crm.audit(resident.id)
    with pytest.raises(Conflict) as stale:
        await crm.directory.update(resident.id, version=1, by="agent:2", phones=["13900139000"])
    assert str(stale.value) == (
        f"resident {resident.id} was changed by someone else (version 2, you had 1); reload"
    )
    assert await crm.directory.get(resident.id) == before
    assert await crm.audit(resident.id) == trail
    with pytest.raises(NotFound):
        await crm.directory.update(resident.id + 100, version=1, by="agent:2", note="x")


async def test_a_resident_in_an_unknown_room_is_refused_and_nothing_written(crm: Crm) -> None:
    await crm.directory.add_room("3", "201")
    with pytest.raises(InvalidInput) as unknown:
        await crm.directory.create(
            name="张伟", building="9", room="901", phones=["13800138000"], by="agent:1"
        )
    assert unknown.value.field == "room"
    assert unknown.value.reason.startswith("unknown room 9-901: not in the roster")
    with pytest.raises(InvalidInput) as bad_phone:
        await crm.directory.create(
            name="张伟", building="3", room="201", phones=["13800138000", "123"], by="agent:1"
        )
    assert bad_phone.value.field == "phones[2]"
    with pytest.raises(InvalidInput) as no_phone:
        await crm.directory.create(name="张伟", building="3", room="201", phones=[], by="agent:1")
    assert no_phone.value.field == "phones"
    with pytest.raises(InvalidInput) as markup:
        await crm.directory.create(
            name="<b>张伟</b>", building="3", room="201", phones=["13800138000"], by="agent:1"
        )
    assert markup.value.field == "name"
    assert await crm.counts() == {"rooms": 1, "residents": 0, "phones": 0, "audit": 0}
    resident = await crm.directory.create(
        name="张伟", building="3", room="201", phones=["13800138000"], by="agent:1"
    )
    with pytest.raises(InvalidInput) as moved:
        await crm.directory.update(resident.id, version=1, by="agent:1", building="9", room="901")
    assert moved.value.field == "room"
    assert (await crm.directory.get(resident.id)).version == 1


async def test_rooms_are_added_once_and_unknown_ones_named(crm: Crm) -> None:
    first = await crm.directory.add_room("12A", "1-1201")
    assert await crm.directory.add_room("12A", "1-1201") == first
    assert await crm.directory.room_id("12A", "1-1201") == first.id
    assert await crm.directory.rooms("12A") == [first]
    assert await crm.directory.rooms("3") == []
    with pytest.raises(InvalidInput) as unknown:
        await crm.directory.room_id("3", "201")
    assert (unknown.value.field, unknown.value.reason.split(":")[0]) == (
        "room",
        "unknown room 3-201",
    )


async def test_the_directory_lists_by_building_room_phone_name_and_completeness(
    crm: Crm, tmp_path: Path
) -> None:
    await import_roster(crm.directory, write(tmp_path, ROSTER))
    contact = await crm.directory.contact_for("13344445555", at=T0)

    async def names(**filters: Any) -> tuple[list[str | None], int]:
        found, total = await crm.directory.list(**filters)
        return [r.name for r in found], total

    assert await names(building="3") == (["张伟", "李娜", "王芳"], 3)
    assert await names(building="3", room="201") == (["张伟", "李娜"], 2)
    assert await names(phone="138 0013 8000") == (["张伟", "李娜", "黄敏"], 3)
    assert await names(name="王") == (["王芳"], 1)
    assert await names(name="%") == ([], 0)  # a wildcard is a character, not a pattern
    assert await names(complete=False) == ([None], 1)
    assert await names(limit=2, offset=6) == (["黄敏", None], 8)
    assert (await crm.directory.list(complete=False))[0][0].id == contact.id


# -- the command -----------------------------------------------------------------------


async def test_the_command_imports_reports_and_finds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("HOTLINE_DB_URL", url)
    config = str(ROOT / "config" / "hotline.toml")

    async def hotline(*args: str) -> tuple[int, str, str]:
        status = await asyncio.to_thread(main, ["--config", config, *args])
        out, err = capsys.readouterr()
        return status, out, err

    good = write(tmp_path, ROSTER)
    # (stderr carries the schema migration's log lines)
    status, out, _ = await hotline("residents", "import", str(good), "--dry-run")
    assert (status, out) == (
        0,
        "added 7, updated 0, unchanged 0, rejected 0 (dry run: nothing written)\n",
    )
    status, out, _ = await hotline("residents", "import", str(good))
    assert (status, out) == (0, "added 7, updated 0, unchanged 0, rejected 0\n")
    status, out, _ = await hotline("residents", "import", str(write(tmp_path, BAD_ROWS, "b.csv")))
    assert status == 1
    lines = out.splitlines()
    assert lines[0] == "added 2, updated 0, unchanged 1, rejected 10"
    assert lines[1] == f"line 3: phones[1]: '123' {NOT_A_PHONE}"
    assert lines[4] == "line 7: duplicate of line 2"
    assert len(lines) == 11

    status, out, err = await hotline("residents", "import", str(tmp_path / "missing.csv"))
    assert (status, out) == (2, "")
    assert "file: cannot read" in err
    assert "missing.csv" in err

    status, out, _ = await hotline("residents", "find", "138-0013-8000")
    assert status == 0
    found = out.splitlines()
    assert [line.split()[1:3] for line in found] == [
        ["3-201", "张伟"],
        ["3-201", "李娜"],
        ["12A-302", "黄敏"],
    ]
    status, out, err = await hotline("residents", "find", "13999999999")
    assert (status, out) == (1, "")
    assert err.endswith("nobody has 13999999999\n")
    status, _, err = await hotline("residents", "find", "110")
    assert status == 2
    assert "phone: '110'" in err

    # What the command wrote is in the database the service uses.
    engine = one_connection_engine(url)
    try:
        directory = ResidentDirectory(make_sessionmaker(engine), FixedClock(T0))
        residents, total = await directory.list()
        assert total == 9
        assert {r.source for r in residents} == {"import"}
    finally:
        await engine.dispose()
