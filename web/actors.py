"""Who a change is recorded as having made: the signed-in person, not what the body says.

A case history or an audit entry that names whoever the client typed is worth nothing
in a dispute, so a person signed in with the session acts as themselves: a ``by`` that
names anyone else is refused rather than silently replaced (the client believes
something untrue otherwise), and leaving it out is the normal way. An integration token
is not a person: a CRM sync may say on whose behalf it acts, and the record keeps both
(``王班长 (token:crm-sync)``), so nobody can hide behind a token's name or borrow a
colleague's.
"""

from __future__ import annotations

from aiohttp import web

from crm import validation
from crm.exceptions import InvalidInput, InvalidQuery
from web.auth import principal_of

ACTOR_RULE = (
    "Who does it, for the audit trail. Signed in: leave it out (you act as yourself; "
    "another name is refused). With a token: the person the integration acts for, "
    "recorded beside the token's name; left out, the token's name alone."
)
ACTOR_MAX = 80  # crm.validation.actor's bound, which every crm write checks again


def acting(request: web.Request, given: str | None, field: str = "by") -> str:
    """The actor to record for a change a request body asks for."""
    return _actor(request, given, field, InvalidInput)


def acting_by_query(request: web.Request, given: str | None, field: str = "by") -> str:
    """The same for a change whose actor may be named in the query (the roster upload)."""
    return _actor(request, given, field, InvalidQuery)


def _actor(
    request: web.Request,
    given: str | None,
    field: str,
    refusal: type[InvalidInput] | type[InvalidQuery],
) -> str:
    who = principal_of(request)
    if who.token_id is None:
        if given is not None and given.strip() != who.name:
            raise refusal(
                field,
                f"names someone else: you are signed in as {who.name} and act as yourself "
                f"(leave {field} out)",
            )
        return who.name
    if given is None:
        return who.label
    try:
        person = validation.actor(field, given)
    except InvalidInput as bad:
        raise refusal(field, bad.reason) from None
    suffix = f" ({who.label})"
    if len(person) + len(suffix) > ACTOR_MAX:
        raise refusal(
            field, f"must be at most {ACTOR_MAX - len(suffix)} characters with this token"
        )
    return person + suffix
