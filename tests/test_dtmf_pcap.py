"""The keys' pcap SIPp plays: a file it can read, and one RFC 4733 stream Asterisk accepts.

Read back the way SIPp reads it (the capture's packet times, each frame's UDP datagram),
every key of a sequence must be an event later than the one before it, in sequence
number and in RTP time: that is what sip-tester's stock files get wrong for 2 then 1.
"""

from __future__ import annotations

import dataclasses
import itertools
import struct
from pathlib import Path

import pytest

from tests.dtmf_pcap import EVENTS, UDP, internet_checksum, telephone_events, write_pcap


@dataclasses.dataclass(frozen=True)
class Read:
    at_us: int  # the capture's time, from its first packet
    marker: bool
    payload_type: int
    seq: int
    timestamp: int
    ssrc: int
    event: int
    end: bool
    volume: int
    duration: int


def read_pcap(path: Path) -> list[Read]:
    """Each packet's time and RTP fields, checking the headers SIPp relies on."""
    data = path.read_bytes()
    magic, major, minor, _, _, snaplen, link = struct.unpack("<IHHiIII", data[:24])
    assert (magic, major, minor, link) == (0xA1B2C3D4, 2, 4, 1)  # µs, 2.4, Ethernet
    found: list[Read] = []
    offset, first_us = 24, None
    while offset < len(data):
        seconds, micros, caplen, length = struct.unpack("<IIII", data[offset : offset + 16])
        frame = data[offset + 16 : offset + 16 + caplen]
        offset += 16 + caplen
        assert caplen == length <= snaplen  # SIPp refuses truncated packets
        assert frame[12:14] == b"\x08\x00"  # IPv4
        ip = frame[14:34]
        assert ip[0] == 0x45  # IPv4 without options
        assert ip[9] == UDP
        assert internet_checksum(ip) == 0
        udp = frame[34:]
        assert struct.unpack("!H", ip[2:4])[0] == 20 + len(udp)
        assert struct.unpack("!H", udp[4:6])[0] == len(udp)  # SIPp sends this many bytes
        assert internet_checksum(ip[12:20] + struct.pack("!BBH", 0, UDP, len(udp)) + udp) == 0
        rtp = udp[8:]
        assert len(rtp) == 16
        assert rtp[0] == 0x80  # version 2, nothing optional
        _, mpt, seq, timestamp, ssrc, event, flags, duration = struct.unpack("!BBHIIBBH", rtp)
        at_us = seconds * 1_000_000 + micros
        first_us = at_us if first_us is None else first_us
        found.append(
            Read(
                at_us - first_us,
                bool(mpt & 0x80),
                mpt & 0x7F,
                seq,
                timestamp,
                ssrc,
                event,
                bool(flags & 0x80),
                flags & 0x3F,
                duration,
            )
        )
    return found


def test_two_then_one_is_one_stream_each_key_a_later_event(tmp_path: Path) -> None:
    packets = read_pcap(write_pcap(tmp_path / "keys.pcap", telephone_events("21", gap_ms=1500)))

    assert {(p.payload_type, p.ssrc, p.volume) for p in packets} == {(101, 0x4B455953, 10)}
    seqs = [p.seq for p in packets]
    assert seqs == list(range(seqs[0], seqs[0] + len(packets)))  # every packet the next
    two = [p for p in packets if p.event == EVENTS["2"]]
    one = [p for p in packets if p.event == EVENTS["1"]]
    assert two + one == packets
    for event in (two, one):
        assert len({p.timestamp for p in event}) == 1  # stamped with its start
        assert [p.marker for p in event] == [True] + [False] * (len(event) - 1)
        assert [p.end for p in event] == [False] * (len(event) - 3) + [True] * 3
        durations = [p.duration for p in event]
        assert durations == sorted(durations)
        assert len(set(durations[-3:])) == 1
        assert durations[-1] == 160 * 8  # 160 ms at 8 kHz
        gaps = {b.at_us - a.at_us for a, b in itertools.pairwise(event)}
        assert gaps == {20_000}
    # The 1 comes later than the 2 in both clocks, which agree: 1 tick = 125 µs.
    assert one[0].seq > two[-1].seq
    assert one[0].timestamp - two[0].timestamp == (one[0].at_us - two[0].at_us) // 125
    assert one[0].at_us - two[0].at_us == (160 + 1500) * 1000


def test_a_key_pressed_twice_is_two_events() -> None:
    packets = telephone_events("22", gap_ms=200)
    starts = [p for p in packets if p.rtp[1] & 0x80]
    assert len(starts) == 2
    assert starts[0].rtp[4:8] < starts[1].rtp[4:8]  # a new timestamp: not a repeat


@pytest.mark.parametrize(
    ("keys", "options", "says"),
    [
        ("", {}, "keys must be"),
        ("2x", {}, "keys must be"),
        ("1", {"tone_ms": 150}, "tone_ms"),
        ("1", {"tone_ms": 20}, "tone_ms"),
        ("12", {"gap_ms": 20}, "gap_ms"),
    ],
)
def test_impossible_keying_is_refused(keys: str, options: dict[str, int], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        telephone_events(keys, **options)
