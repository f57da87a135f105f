"""A corpus of hostile audio for every container the decoder takes (model/audio.py `_sniff`).

Each container gets a real file (encoded by PyAV, as clients make them) and what an attacker
makes of it: cut short, its magic wrong, its header lying about length, rate or channels,
zero frames, and a bomb: a small upload that decodes to an hour or more. Bombs of compressed
formats are one encoded stretch of silence remuxed many times over (no hour of encoding);
bombs of plain PCM are 8-bit at 4 kHz, the least the decoder takes. A header that declares
1 Hz is its own case: resampled, each packet would grow 16,000 times.

`Case.refused` says whether the service must refuse the file (a 4xx) or may also answer it:
a header that lies about a length the decoder never trusts leaves audio that really decodes.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass

import av
import numpy as np

from tests.audio_fixtures import Encoding, encode

__all__ = ["CONTAINERS", "Case", "corpus"]

RATE = 16000
BOMB_SECONDS = 3600

CONTAINERS: dict[str, Encoding] = {
    "wav": Encoding("wav", "pcm_s16le"),
    "aiff": Encoding("aiff", "pcm_s16be"),
    "mp3": Encoding("mp3", "libmp3lame", rate=8000, options={"b": "8k"}),
    "aac": Encoding("adts", "aac", rate=8000),
    "m4a": Encoding("ipod", "aac", rate=8000),
    "flac": Encoding("flac", "flac"),
    "ogg-opus": Encoding("ogg", "libopus", rate=48000, options={"b": "6000"}),
    "ogg-vorbis": Encoding("ogg", "vorbis", layout="stereo", options={"strict": "experimental"}),
    "webm": Encoding("webm", "libopus", rate=48000, options={"b": "6000"}),
}
"""What `_sniff` recognises: RIFF/RF64 wav, AIFF, mp3, ADTS aac, mp4/m4a, flac, ogg, matroska/webm."""


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    refused: bool = True
    """True: only a 4xx will do. False: the file also really decodes, so 200 is right too."""
    too_long: bool = False
    """A bomb: it must be refused for its length (413), decoding no more than the limit."""
    says: str = ""
    """What the refusal's message must say, where one reason alone is right."""


def _tone(seconds: float, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (level * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def _repeated(data: bytes, container: str, times: int) -> bytes:
    """`data`'s audio packets muxed `times` over, timestamps shifted: a long file without encoding it."""
    with av.open(io.BytesIO(data), "r") as source:
        stream = source.streams.audio[0]
        packets = [packet for packet in source.demux(stream) if packet.size]
        span = sum(packet.duration or 0 for packet in packets)
        out = io.BytesIO()
        with av.open(out, "w", format=container) as target:
            copy = target.add_stream_from_template(stream)
            for index in range(times):
                for packet in packets:
                    again = av.Packet(bytes(packet))
                    again.pts = (packet.pts or 0) + index * span
                    again.dts = (packet.dts or 0) + index * span
                    again.duration, again.time_base, again.stream = packet.duration, packet.time_base, copy
                    target.mux(again)
    return out.getvalue()


def _patch(data: bytes, marker: bytes, offset: int, value: bytes) -> bytes:
    """`value` written `offset` bytes after the end of the first `marker`."""
    at = data.index(marker) + len(marker) + offset
    return data[:at] + value + data[at + len(value) :]


def _ogg_crc(page: bytes) -> int:
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def _ogg_resealed(data: bytes) -> bytes:
    """Every Ogg page's CRC computed again, so a patched header is read, not skipped as damaged."""
    out, at = bytearray(data), 0
    while at + 27 <= len(out) and out[at : at + 4] == b"OggS":
        segments = out[at + 26]
        length = 27 + segments + sum(out[at + 27 : at + 27 + segments])
        out[at + 22 : at + 26] = b"\0\0\0\0"
        out[at + 22 : at + 26] = struct.pack("<I", _ogg_crc(bytes(out[at : at + length])))
        at += length
    return bytes(out)


def _adts_frames(data: bytes, change: Callable[[bytearray], None]) -> bytes:
    """`change` applied to each ADTS frame header in turn (walked by their frame lengths)."""
    out, at = bytearray(data), 0
    while at + 7 <= len(out) and out[at] == 0xFF:
        length = ((out[at + 3] & 3) << 11) | (out[at + 4] << 3) | (out[at + 5] >> 5)
        header = out[at : at + 7]
        change(header)
        out[at : at + 7] = header
        at += max(length, 7)
    return bytes(out)


def _mp3_frames(data: bytes, change: Callable[[int], int]) -> bytes:
    """Each frame header's third byte (bitrate and rate indexes) changed, found by the first frame's sync."""
    start = data.index(b"\xff", 10 + ((data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]))
    sync = data[start : start + 2]
    heads = {data[at : at + 3] for at in range(len(data) - 2) if data[at : at + 2] == sync}
    for head in heads:
        data = data.replace(head, sync + bytes([change(head[2])]))
    return data


def _wav(rate: int, data_bytes: int, *, channels: int = 1, bits: int = 16, body: bytes | None = None) -> bytes:
    block = max(channels * bits // 8, 1)
    fields = (b"RIFF", (36 + data_bytes) & 0xFFFFFFFF, b"WAVE", b"fmt ", 16, 1, channels, rate)
    head = struct.pack("<4sI4s4sIHHI", *fields) + struct.pack("<IHH", (rate * block) & 0xFFFFFFFF, block & 0xFFFF, bits)
    return head + b"data" + struct.pack("<I", data_bytes & 0xFFFFFFFF) + (bytes(data_bytes) if body is None else body)


def _aiff_rate(hz: float) -> bytes:
    """An 80-bit IEEE extended number, as AIFF's COMM chunk keeps its sample rate."""
    if hz == float("inf"):
        return b"\x7f\xff\x80" + bytes(7)
    exponent = int(hz).bit_length() - 1
    return struct.pack(">HQ", 16383 + exponent, int(hz) << (63 - exponent))


def _id3(size: int = 0, *, footer: bool = False) -> bytes:
    syncsafe = bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))
    return b"ID3\x04\x00" + (b"\x10" if footer else b"\x00") + syncsafe


def _generic(name: str, good: bytes, bomb: bytes, empty: bytes | None) -> list[Case]:
    """What every container gets: cut short, magic broken, no frames, garbage after the magic, a bomb."""
    cases = [
        Case(f"{name}/cut-in-header", good[:20]),
        Case(f"{name}/magic-wrong", b"XXXX" + good[4:], says="" if name == "m4a" else "not audio"),
        Case(f"{name}/garbage-after-magic", good[:12] + bytes(range(256)) * 16),
        Case(f"{name}/cut-to-a-tenth", good[: len(good) // 10], refused=False),
        Case(f"{name}/bomb", bomb, too_long=True, says="more than 60 s"),
    ]
    if empty is not None:
        cases.append(Case(f"{name}/zero-length", empty))
    return cases


def _bomb(name: str) -> bytes:
    encoding = CONTAINERS[name]
    if encoding.codec.startswith("pcm"):  # plain PCM does not compress: 8 bits at 4 kHz, 4 KB a second
        if name == "wav":
            return _wav(4000, 1_200_000, bits=8, body=b"\x80" * 1_200_000)
        return encode(np.zeros(1_200_000, dtype=np.float32), 4000, Encoding("aiff", "pcm_s8"))
    silence = encode(np.zeros(10 * RATE, dtype=np.float32), RATE, encoding)
    return _repeated(silence, encoding.container, BOMB_SECONDS // 10)


def _empty(name: str) -> bytes | None:
    try:
        data = encode(np.zeros(0, dtype=np.float32), RATE, CONTAINERS[name])
    except (av.error.FFmpegError, ValueError):
        return None
    return data


def _specific(goods: dict[str, bytes]) -> list[Case]:
    """Each container's own lies: the header fields that size buffers or say how long the audio is."""
    wav, aiff, flac, m4a = goods["wav"], goods["aiff"], goods["flac"], goods["m4a"]
    opus, vorbis, webm, mp3, aac = goods["ogg-opus"], goods["ogg-vorbis"], goods["webm"], goods["mp3"], goods["aac"]
    pcm = bytes(6400)
    long_aiff = encode(_tone(12.5), RATE, CONTAINERS["aiff"])  # 200,000 samples: 55 hours at 1 Hz
    return [
        Case("wav/claims-4-GB", _wav(RATE, 0xFFFFFFF0, body=pcm), refused=False),
        Case("wav/rate-1-Hz", _wav(1, 400_000, body=b"\x01\x00" * 200_000), says="sample rate is 1 Hz"),  # 55 hours
        Case("wav/rate-2-GHz", _wav(2_000_000_000, len(pcm), body=pcm), says="sample rate is 2000000000 Hz"),
        Case("wav/rate-0", _wav(0, len(pcm), body=pcm)),
        Case("wav/65535-channels", _wav(RATE, 65535 * 20, channels=65535)),
        Case("wav/0-bits", _wav(RATE, len(pcm), bits=0, body=pcm)),
        Case("wav/rf64-without-ds64", b"RF64" + wav[4:]),
        Case("aiff/claims-4-G-frames", _patch(aiff, b"COMM", 6, b"\xff\xff\xff\xff"), refused=False),
        Case("aiff/rate-1-Hz", _patch(long_aiff, b"COMM", 12, _aiff_rate(1)), says="sample rate is 1 Hz"),
        Case("aiff/infinite-rate", _patch(aiff, b"COMM", 12, _aiff_rate(float("inf")))),
        Case("aiff/65535-channels", _patch(aiff, b"COMM", 4, b"\xff\xff")),
        # STREAMINFO: 20 bits of rate, 3 of channels, 5 of bits per sample, 36 of total samples.
        Case("flac/claims-2^36-samples", _patch(flac, b"fLaC", 14, b"\x0f\xff\xff\xff\xff"), refused=False),
        Case("flac/rate-655350-8-channels", _patch(flac, b"fLaC", 14, b"\x9f\xff\x6e\xf0"), refused=False),
        Case("flac/rate-0", _patch(flac, b"fLaC", 14, b"\x00\x00\x0f\xf0")),
        Case("flac/block-sizes-0", _patch(flac, b"fLaC", 4, b"\x00\x00\x00\x00"), refused=False),
        Case("m4a/duration-2^32-at-1-Hz", _patch(m4a, b"mdhd", 12, b"\x00\x00\x00\x01\xff\xff\xff\xff"), refused=False),
        Case("m4a/2^31-sample-sizes", _patch(m4a, b"stsz", 8, b"\x7f\xff\xff\xff")),
        Case("m4a/2^31-time-entries", _patch(m4a, b"stts", 4, b"\x7f\xff\xff\xff")),
        Case("m4a/65535-channels-rate-65535", _patch(m4a, b"mp4a", 16, b"\xff\xff"), refused=False),
        Case("ogg-opus/255-channels", _ogg_resealed(_patch(opus, b"OpusHead", 1, b"\xff"))),
        Case("ogg-opus/pre-skip-65535", _ogg_resealed(_patch(opus, b"OpusHead", 2, b"\xff\xff")), refused=False),
        Case("ogg-opus/granule-2^63", _ogg_resealed(_patch(opus, b"OggS", 2, b"\xff" * 7 + b"\x7f")), refused=False),
        Case("ogg-vorbis/rate-2^32", _ogg_resealed(_patch(vorbis, b"\x01vorbis", 5, b"\xff\xff\xff\xff"))),
        Case("ogg-vorbis/255-channels", _ogg_resealed(_patch(vorbis, b"\x01vorbis", 4, b"\xff"))),
        Case("ogg-vorbis/block-size-2^15", _ogg_resealed(_patch(vorbis, b"\x01vorbis", 21, b"\xff"))),
        Case("webm/segment-2^56", _patch(webm, b"\x18\x53\x80\x67", 0, b"\x01\xff\xff\xff\xff\xff\xff\xfe"), False),
        Case("webm/rate-1e12", _patch(webm, b"\xb5\x88", 0, struct.pack(">d", 1e12)), refused=False),
        Case("webm/255-channels", _patch(webm, b"\x9f\x81", 0, b"\xff"), refused=False),
        Case("webm/duration-1e300", _patch(webm, b"\x44\x89\x88", 0, struct.pack(">d", 1e300)), refused=False),
        Case("mp3/reserved-rate", _mp3_frames(mp3, lambda byte: byte | 0x0C)),
        Case("mp3/bad-bitrate", _mp3_frames(mp3, lambda byte: byte | 0xF0)),
        Case("aac/forbidden-rate", _adts_frames(aac, _adts_rate(15))),
        Case("aac/frame-length-8191", _adts_frames(aac, _adts_length(8191)), refused=False),
        Case("id3/17-stacked-tags-before-flac", _id3() * 17 + flac, says="more than 16 ID3 tags"),
        Case("id3/tag-nested-in-a-tag", _id3(20) + _id3(10) + bytes(10)),
        Case("id3/nested-tag-claiming-256-MB", _id3(20) + _id3(0x0FFFFFFF) + bytes(10) + mp3, refused=False),
        Case("id3/claims-256-MB", _id3(0x0FFFFFFF) + mp3),
        Case("id3/before-ogg", _id3(4) + bytes(4) + opus),
        Case("id3/with-footer-before-flac", _id3(0, footer=True) + b"3DI\x04\x00\x10\x00\x00\x00\x00" + flac, False),
        Case("id3/only", _id3(100) + bytes(100)),
    ]


def _adts_rate(index: int) -> Callable[[bytearray], None]:
    def change(header: bytearray) -> None:
        header[2] = (header[2] & 0xC3) | (index << 2)

    return change


def _adts_length(length: int) -> Callable[[bytearray], None]:
    def change(header: bytearray) -> None:
        header[3] = (header[3] & 0xFC) | (length >> 11)
        header[4] = (length >> 3) & 0xFF
        header[5] = (header[5] & 0x1F) | ((length & 7) << 5)

    return change


def corpus() -> list[Case]:
    """Every case, built in a few seconds (the bombs are remuxed, not encoded)."""
    goods = {name: encode(_tone(1.0), RATE, encoding) for name, encoding in CONTAINERS.items()}
    cases: list[Case] = []
    for name, good in goods.items():
        cases += _generic(name, good, _bomb(name), _empty(name))
    cases += _specific(goods)
    cases += [Case("empty-upload-body", b"\x00"), Case("random-bytes", bytes(np.random.default_rng(7).bytes(4096)))]
    return cases
