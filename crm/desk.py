"""The CRM's books, opened together on one database, clock and set of rules.

The HTTP API, the call-to-case intake and the deadline watcher all take this one object,
so they cannot end up with two clocks or two versions of the rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from crm.case_callbacks import CallBackBook
from crm.cases import CaseBook
from crm.clock import Clock
from crm.complaints import ComplaintDesk
from crm.residents import ResidentDirectory
from crm.rules import ServiceRules
from crm.work_orders import WorkOrders


@dataclass(frozen=True)
class CrmDesk:
    cases: CaseBook
    orders: WorkOrders
    complaints: ComplaintDesk
    callbacks: CallBackBook
    residents: ResidentDirectory
    clock: Clock
    rules: ServiceRules

    @classmethod
    def open(
        cls, sessions: async_sessionmaker[AsyncSession], clock: Clock, rules: ServiceRules
    ) -> CrmDesk:
        return cls(
            cases=CaseBook(sessions, clock, rules),
            orders=WorkOrders(sessions, clock, rules),
            complaints=ComplaintDesk(sessions, clock, rules),
            callbacks=CallBackBook(sessions, clock, rules),
            residents=ResidentDirectory(sessions, clock),
            clock=clock,
            rules=rules,
        )
