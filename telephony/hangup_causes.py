"""Names of the Q.850 hang-up causes a hotline call commonly ends with.

Asterisk names the cause only in ChannelDestroyed, which often arrives after the
record is closed, so the record takes the name from here.
"""

from __future__ import annotations

Q850 = {
    1: "Unallocated (unassigned) number",
    3: "No route to destination",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    21: "Call Rejected",
    27: "Destination out of order",
    31: "Normal, unspecified",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    41: "Temporary failure",
    42: "Switching equipment congestion",
    58: "Bearer capability not presently available",
    102: "Recovery on timer expiry",
    127: "Interworking, unspecified",
}


def cause_text(cause: int | None) -> str | None:
    return Q850.get(cause) if cause is not None else None
