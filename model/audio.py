"""Audio in and out: every upload becomes 16 kHz mono float32 here, and nowhere else.

Decoding goes through PyAV (FFmpeg inside the wheel) so that wav, mp3, ogg (Vorbis and
Opus), webm (Opus), flac, m4a, aac and aiff all take one path with one resampler. We sniff the container
from its first bytes and open it with that demuxer only: FFmpeg's own probing would also
accept playlists and image formats, and a playlist can make the demuxer open other files.
FFmpeg's exceptions never leave this module; callers see `AudioDecodeError` or
`AudioTooLongError` with a message that says what is wrong with the input.
"""

from __future__ import annotations

import io
import wave

import av
import av.error
import numpy as np

from model.errors import AudioDecodeError, AudioTooLongError

__all__ = ["MAX_RATE", "MIN_RATE", "SAMPLE_RATE", "decode_audio", "duration_s", "encode_wav", "resample"]

SAMPLE_RATE = 16000
"""The one rate of audio inside voicegraph (what Whisper and Silero VAD expect)."""

_EMPTY = "the audio is empty (0 bytes)"
_UNKNOWN_FORMAT = (
    "the data is not audio in a format we decode (wav, mp3, ogg/opus, ogg/vorbis, webm, flac, m4a, aac, aiff)"
)
_CORRUPT = "the {fmt} audio is corrupt or truncated ({detail})"
_NO_AUDIO_STREAM = "the {fmt} file has no audio stream"
_BAD_RATE = "the audio's sample rate is {rate} Hz, outside the {low}-{high} Hz we decode"
_NO_SAMPLES = "the audio contains no samples (zero length)"
_TOO_LONG = "the audio lasts more than {limit:g} s"
_TOO_MANY_TAGS = "the audio starts with more than {limit} ID3 tags"

_MAX_ID3_TAGS = 16
"""ID3v2 tags skipped before the audio; real files carry one, rarely two."""
MIN_RATE, MAX_RATE = 4000, 768_000
"""Sample rates we resample from. Resampling one frame multiplies it by 16,000 / rate, so a
header that claims 1 Hz would turn each 4,096-sample packet into 65 million samples (750 MB
from a 400 KB upload) before any duration limit could see it; far above the range, the
resampler's filter alone takes hundreds of MB. Speech is recorded at 8 to 48 kHz."""
_NAMES = {"mov": "mp4/m4a", "matroska": "webm/matroska"}
"""How a demuxer is named in messages, where its FFmpeg name would not say which files it reads."""

# FFmpeg can raise through several Python types; all of them mean "bad input" here.
_AV_ERRORS = (av.error.FFmpegError, OSError, ValueError, EOFError, IndexError)


def decode_audio(data: bytes, *, max_seconds: float | None = None) -> np.ndarray:
    """Decode any supported container to 16 kHz mono float32 in [-1, 1].

    Decoding stops as soon as the output passes `max_seconds`, so a long (or
    decompression-bomb) upload costs no more than the limit itself. A stream that breaks
    after some audio was decoded keeps what decoded, as the ffmpeg command line does:
    browsers often cut the last packet of a recording.
    """
    if not data:
        raise AudioDecodeError(_EMPTY)
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
    fmt = _sniff(data)
    if fmt is None:
        raise AudioDecodeError(_UNKNOWN_FORMAT)
    limit = None if max_seconds is None else int(max_seconds * SAMPLE_RATE)

    parts: list[np.ndarray] = []
    total = 0
    name = _NAMES.get(fmt, fmt)
    try:
        container = av.open(io.BytesIO(data), mode="r", format=fmt, metadata_errors="ignore")
    except _AV_ERRORS as err:
        raise AudioDecodeError(_CORRUPT.format(fmt=name, detail=_detail(err))) from None
    with container:
        if not container.streams.audio:
            raise AudioDecodeError(_NO_AUDIO_STREAM.format(fmt=name))
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        try:
            for frame in container.decode(stream):
                if not MIN_RATE <= frame.sample_rate <= MAX_RATE:  # checked per frame: it may change midway
                    raise AudioDecodeError(_BAD_RATE.format(rate=frame.sample_rate, low=MIN_RATE, high=MAX_RATE))
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1))
                    total += out.samples
                if limit is not None and total > limit:
                    raise AudioTooLongError(_TOO_LONG.format(limit=max_seconds))
            for out in resampler.resample(None):
                parts.append(out.to_ndarray().reshape(-1))
                total += out.samples
        except _AV_ERRORS as err:
            if total == 0:
                raise AudioDecodeError(_CORRUPT.format(fmt=name, detail=_detail(err))) from None
    if total == 0:
        raise AudioDecodeError(_NO_SAMPLES)
    if limit is not None and total > limit:
        raise AudioTooLongError(_TOO_LONG.format(limit=max_seconds))
    audio = np.concatenate(parts).astype(np.float32, copy=False)
    return np.nan_to_num(audio, copy=False)


def encode_wav(audio: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM mono WAV: the one format every player, browser and planner accepts."""
    samples = _mono(audio)
    if samples.dtype != np.int16:
        samples = (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype(np.int16)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(samples.astype("<i2", copy=False).tobytes())
    return buf.getvalue()


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Mono float32 at `to_rate`, through FFmpeg's swresample (the same filter as decoding)."""
    samples = _mono(audio).astype(np.float32, copy=False)
    if from_rate == to_rate or samples.size == 0:
        return samples.copy()
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples).reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = from_rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=to_rate)
    outs = [*resampler.resample(frame), *resampler.resample(None)]
    if not outs:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate([out.to_ndarray().reshape(-1) for out in outs]).astype(np.float32, copy=False)


def duration_s(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Seconds of mono audio at `sample_rate`."""
    return float(len(audio)) / sample_rate


def _mono(audio: np.ndarray) -> np.ndarray:
    """A 1-D view; 2-D (samples, channels) input is averaged, as soundfile returns it."""
    arr = np.asarray(audio)
    if arr.ndim == 2:
        arr = arr.mean(axis=1) if arr.dtype != np.int16 else arr.mean(axis=1).astype(np.int16)
    if arr.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {arr.shape}")
    return arr


def _sniff(data: bytes) -> str | None:
    """The FFmpeg demuxer for these bytes, from their magic numbers; None if not audio we take.

    ID3v2 tags (which may precede mp3, aac or flac) are stepped over by offset, a bounded
    number of them: a file of nothing but stacked empty tags must cost neither a copy of
    the upload per tag nor a frame of recursion per tag.
    """
    start = 0
    for _ in range(_MAX_ID3_TAGS + 1):
        if data[start : start + 3] != b"ID3" or len(data) - start < 10:
            break
        start += _id3_length(data, start)
    else:
        raise AudioDecodeError(_TOO_MANY_TAGS.format(limit=_MAX_ID3_TAGS))
    fmt = _sniff_magic(data[start : start + 12])
    if start == 0:
        return fmt
    return fmt if fmt in ("mp3", "aac", "flac") else "mp3"


def _id3_length(data: bytes, start: int) -> int:
    """Bytes of the ID3v2 tag at `start`: its 10-byte header, syncsafe size and optional footer."""
    size = (data[start + 6] << 21) | (data[start + 7] << 14) | (data[start + 8] << 7) | data[start + 9]
    footer = 10 if data[start + 5] & 0x10 else 0
    return 10 + size + footer


def _sniff_magic(head: bytes) -> str | None:
    """The demuxer named by a file's first 12 bytes (past any ID3 tags)."""
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"  # also webm
    if head[4:8] == b"ftyp":
        return "mov"  # mp4 / m4a
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if len(head) >= 2 and head[0] == 0xFF:
        if head[1] & 0xF6 == 0xF0:
            return "aac"  # ADTS: sync word, layer 0
        if head[1] & 0xE0 == 0xE0 and head[1] & 0x06:
            return "mp3"  # MPEG audio frame sync, layer I-III
    return None


def _detail(err: Exception) -> str:
    """FFmpeg's short reason, without the file name PyAV appends ('<none>' for bytes)."""
    reason = str(getattr(err, "strerror", None) or str(err) or type(err).__name__).strip()
    return "undecodable data" if reason.startswith("Error number") else reason  # a codec's private code
