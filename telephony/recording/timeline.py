"""Two speakers' legs become one conversation: turns in time order, labelled by speaker.

Each leg was recorded on its own (so crosstalk never mixes two voices in one word), and
each started at its own moment; ``offset_ms`` puts a leg's word times on the
conversation's clock. A turn is what one speaker says until the other speaks: Vosk's
end-points inside one person's speech are merged, so a reviewer reads 居民 / 坐席 / 居民,
not ten fragments.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from crm.transcripts import SPEAKER_LABELS, Segment, Word
from telephony.recording.decoder import Utterance
from telephony.recording.normalise import join_words, normalise_words


@dataclass(frozen=True)
class Leg:
    speaker: str  # resident / agent / message
    recording_id: int | None
    offset_ms: int  # this leg's start on the conversation's clock
    utterances: Sequence[Utterance]


def turns(legs: Iterable[Leg]) -> list[Segment]:
    pieces = sorted(
        (piece for leg in legs for piece in _pieces(leg)), key=lambda s: (s.start_ms, s.end_ms)
    )
    merged: list[Segment] = []
    for piece in pieces:
        last = merged[-1] if merged else None
        if last is not None and last.speaker == piece.speaker:
            words = last.words + piece.words
            merged[-1] = Segment(
                speaker=last.speaker,
                start_ms=last.start_ms,
                end_ms=max(last.end_ms, piece.end_ms),
                text=join_words([w.word for w in words]),
                words=words,
                recording_id=last.recording_id,
            )
        else:
            merged.append(piece)
    return merged


def _pieces(leg: Leg) -> list[Segment]:
    pieces = []
    for utterance in leg.utterances:
        texts = normalise_words([w.word for w in utterance.words])
        words = tuple(
            Word(
                word=text,
                start_ms=leg.offset_ms + round(w.start_s * 1000),
                end_ms=leg.offset_ms + round(w.end_s * 1000),
                conf=round(w.conf, 4),
            )
            for text, w in zip(texts, utterance.words, strict=True)
        )
        pieces.append(
            Segment(
                speaker=leg.speaker,
                start_ms=words[0].start_ms,
                end_ms=words[-1].end_ms,
                text=join_words(texts),
                words=words,
                recording_id=leg.recording_id,
            )
        )
    return pieces


def as_text(segments: Iterable[Segment]) -> str:
    """The transcript as a reader sees it: ``[mm:ss] 居民：…`` per turn."""
    lines = []
    for s in segments:
        minutes, seconds = divmod(s.start_ms // 1000, 60)
        label = SPEAKER_LABELS.get(s.speaker, s.speaker)
        lines.append(f"[{minutes:02d}:{seconds:02d}] {label}：{s.text}")
    return "\n".join(lines)
