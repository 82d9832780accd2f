"""``hotline residents``: import the roster file, look a caller's number up.

Kept apart from ``telephony.cli`` so it is wired in with two calls (``add_residents_parser``
and ``run_residents``). The exit status tells a script what happened: 0 all rows taken,
1 some rows rejected (or nobody found), 2 nothing done (unreadable file, bad number,
database down).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Protocol

from crm.clock import SystemClock
from crm.db import create_engine, make_sessionmaker, migrate
from crm.exceptions import CrmError
from crm.residents import ResidentDirectory, ResidentRecord, room_label
from crm.roster_import import ImportReport, import_roster


class _Database(Protocol):
    @property
    def url(self) -> str: ...

    @property
    def wait_s(self) -> float: ...


class HasDatabase(Protocol):
    """What the command needs of the service's configuration (``telephony.config.Config``)."""

    @property
    def database(self) -> _Database: ...


def add_residents_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    residents = sub.add_parser("residents", help="the resident directory: import, find")
    actions = residents.add_subparsers(dest="residents_action", required=True, metavar="ACTION")
    load = actions.add_parser(
        "import", help="import a roster CSV (building, room, name, phones / 栋号, 房号, 姓名, 电话)"
    )
    load.add_argument("file", type=Path, metavar="FILE.csv")
    load.add_argument(
        "--dry-run", action="store_true", help="report what would change; write nothing"
    )
    load.add_argument("--json", action="store_true", help="print the report as JSON")
    load.add_argument("--by", default="import", help="who imports, for the audit trail")
    find = actions.add_parser("find", help="residents with a phone number")
    find.add_argument("phone", metavar="PHONE")
    find.add_argument("--json", action="store_true", help="print the residents as JSON")


def run_residents(args: argparse.Namespace, config: HasDatabase) -> int:
    try:
        return asyncio.run(_run(args, config.database.url, config.database.wait_s))
    except CrmError as err:
        print(f"hotline residents: {err}", file=sys.stderr)
        return 2


async def _run(args: argparse.Namespace, url: str, wait_s: float) -> int:
    await migrate(url)
    engine = create_engine(url, wait_s=wait_s)
    try:
        directory = ResidentDirectory(make_sessionmaker(engine), SystemClock())
        if args.residents_action == "import":
            report = await import_roster(directory, args.file, by=args.by, dry_run=args.dry_run)
            _print_report(report, dry_run=args.dry_run, as_json=args.json)
            return 1 if report.rejected else 0
        found = await directory.find_by_phone(args.phone)
    finally:
        await engine.dispose()
    if args.json:
        print(json.dumps([r.to_json() for r in found], ensure_ascii=False, indent=2))
    else:
        for resident in found:
            print(describe(resident))
    if not found:
        print(f"nobody has {args.phone}", file=sys.stderr)
    return 0 if found else 1


def _print_report(report: ImportReport, *, dry_run: bool, as_json: bool) -> None:
    if as_json:
        print(json.dumps({**report.to_json(), "dry_run": dry_run}, ensure_ascii=False, indent=2))
        return
    print(
        f"added {report.added}, updated {report.updated}, unchanged {report.unchanged}, "
        f"rejected {len(report.rejected)}" + (" (dry run: nothing written)" if dry_run else "")
    )
    for row in report.rejected:
        print(f"line {row.line}: {row.reason}")


def describe(resident: ResidentRecord) -> str:
    """One line an agent reads: #id room name phones, and whether it still needs filling in."""
    where = (
        room_label(resident.building, resident.room)
        if resident.building is not None and resident.room is not None
        else "(room unknown)"
    )
    state = "" if resident.complete else f"  [incomplete, from {resident.source}]"
    return (
        f"#{resident.id}  {where}  {resident.name or '(no name)'}  "
        f"{', '.join(resident.phones)}{state}"
    )
