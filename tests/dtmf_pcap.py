"""Keys a SIP phone presses, as RFC 4733 telephone-event packets in a pcap file for SIPp.

SIPp's ``play_pcap_audio`` sends each captured packet's UDP payload to the far end's media
port, spaced as the capture's timestamps are. sip-tester's ``dtmf_2833_N.pcap`` files each
carry a fixed RTP sequence number and timestamp, and the 1's are lower than the 2's, so
Asterisk takes a 1 keyed after a 2 for a late packet of an old event and drops it. Here a
whole sequence of keys is one stream: one SSRC, every packet the next sequence number,
each event stamped with the RTP time it starts at, and silence (no packets) between keys
while the clock runs on, as a phone sends them.

Per event (RFC 4733 §2.5): a packet every 20 ms, all with the event's start timestamp;
the marker bit on the first; the duration growing by 20 ms a packet; the last one, with
the E bit, sent three times (each a packet of its own: the next sequence number).
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterable
from pathlib import Path

RATE = 8000  # telephone-event/8000, the clock of the PCMU stream it rides beside
PACKET_MS = 20  # a phone's update interval (ptime)
EVENTS = {**{str(n): n for n in range(10)}, "*": 10, "#": 11, "A": 12, "B": 13, "C": 14, "D": 15}
END_COPIES = 3  # the final packet, three times (RFC 4733 §2.5.1.4)
UDP = 17  # IP protocol number


@dataclasses.dataclass(frozen=True)
class EventPacket:
    """One RTP packet of the stream and when it leaves, in ms from the first key."""

    at_ms: int
    rtp: bytes


def telephone_events(
    digits: str,
    *,
    payload_type: int = 101,
    tone_ms: int = 160,
    gap_ms: int = 1000,
    volume: int = 10,
    ssrc: int = 0x4B455953,
    first_seq: int = 4733,
    first_timestamp: int = 160_000,
) -> list[EventPacket]:
    """The packets of ``digits`` keyed one after another, ``gap_ms`` of silence between.

    ``payload_type`` must be the one the call negotiated for telephone-event; ``volume``
    is the tone's power in -dBm0 (0-63).
    """
    unknown = [d for d in digits if d not in EVENTS]
    if not digits or unknown:
        raise ValueError(f"keys must be some of {''.join(EVENTS)}, got {digits!r}")
    if tone_ms % PACKET_MS or tone_ms < 2 * PACKET_MS:
        raise ValueError(f"tone_ms must be a multiple of {PACKET_MS} ms, at least two packets")
    if gap_ms < (END_COPIES - 1) * PACKET_MS:
        raise ValueError("gap_ms must leave room for the end packet's copies")
    packets: list[EventPacket] = []
    seq = first_seq
    updates = tone_ms // PACKET_MS
    for index, digit in enumerate(digits):
        start_ms = index * (tone_ms + gap_ms)
        timestamp = (first_timestamp + start_ms * RATE // 1000) & 0xFFFFFFFF
        for n in range(updates - 1 + END_COPIES):
            end = n >= updates - 1
            duration = min(n + 1, updates) * PACKET_MS * RATE // 1000  # so far; copies: all
            header = struct.pack(
                "!BBHII",
                0x80,  # version 2, no padding, extension or CSRCs
                (0x80 if n == 0 else 0) | payload_type,  # marker: a new event
                seq & 0xFFFF,
                timestamp,
                ssrc,
            )
            payload = struct.pack(
                "!BBH", EVENTS[digit], (0x80 if end else 0) | (volume & 0x3F), duration
            )
            packets.append(EventPacket(start_ms + n * PACKET_MS, header + payload))
            seq += 1
    return packets


def write_pcap(
    path: Path, packets: Iterable[EventPacket], *, source_port: int = 6000, dest_port: int = 6000
) -> Path:
    """The packets as a pcap file (Ethernet, IPv4, UDP on 127.0.0.1) SIPp can play.

    SIPp keeps only each UDP datagram and the time between packets: it sends from its
    own media port to the port the far end's SDP named (plus this file's destination
    port less the lowest one in it, here always 0), and fills in the UDP checksum.
    """
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # LINKTYPE_ETHERNET
    loopback = bytes([127, 0, 0, 1])
    for ident, packet in enumerate(packets):
        udp = struct.pack("!HHHH", source_port, dest_port, 8 + len(packet.rtp), 0) + packet.rtp
        pseudo = loopback + loopback + struct.pack("!BBH", 0, UDP, len(udp))
        udp = udp[:6] + struct.pack("!H", internet_checksum(pseudo + udp) or 0xFFFF) + udp[8:]
        ip = struct.pack(
            "!BBHHHBBH4s4s",
            0x45,  # IPv4, a 20-byte header
            0,  # type of service
            20 + len(udp),  # total length
            ident & 0xFFFF,  # identification
            0,  # flags, fragment offset
            64,  # time to live
            UDP,
            0,  # header checksum, filled in below
            loopback,  # from
            loopback,  # to
        )
        ip = ip[:10] + struct.pack("!H", internet_checksum(ip)) + ip[12:]
        frame = bytes(12) + b"\x08\x00" + ip + udp  # MAC addresses of zeros, as on lo
        seconds, ms = divmod(packet.at_ms, 1000)
        out += struct.pack("<IIII", 1_700_000_000 + seconds, ms * 1000, len(frame), len(frame))
        out += frame
    path.write_bytes(bytes(out))
    return path


def internet_checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of IP headers and UDP datagrams."""
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
