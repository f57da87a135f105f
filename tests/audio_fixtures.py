"""Encode test audio the way clients send it, with PyAV, so decoding is tested on real files.

Each entry of `FORMATS` is what a real client produces: browsers record webm/Opus or
ogg/Opus, phones upload mp3 or m4a, tools write wav and flac. FFmpeg's native Vorbis encoder
is experimental and takes only stereo, so that case also checks the down-mix.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np

__all__ = ["FORMATS", "Encoding", "encode", "video_only_webm"]


@dataclass(frozen=True)
class Encoding:
    container: str
    codec: str
    rate: int | None = None
    """The encoder's sample rate; None keeps the input's."""
    layout: str = "mono"
    options: dict[str, str] = field(default_factory=dict)


FORMATS: dict[str, Encoding] = {
    "wav": Encoding("wav", "pcm_s16le"),
    "mp3": Encoding("mp3", "libmp3lame"),
    "ogg-opus": Encoding("ogg", "libopus", rate=48000),
    "ogg-vorbis": Encoding("ogg", "vorbis", layout="stereo", options={"strict": "experimental"}),
    "webm": Encoding("webm", "libopus", rate=48000),
    "flac": Encoding("flac", "flac"),
}


def encode(audio: np.ndarray, sample_rate: int, encoding: Encoding) -> bytes:
    """`audio` (mono float32) as a complete file; PyAV converts format, layout and rate."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=encoding.container) as container:
        # Any: PyAV types add_stream by codec name and cannot tell an audio codec from its string.
        stream: Any = container.add_stream(encoding.codec, rate=encoding.rate or sample_rate, options=encoding.options)
        stream.layout = encoding.layout
        frame = av.AudioFrame.from_ndarray(audio.astype(np.float32).reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = sample_rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()


def video_only_webm(frames: int = 5) -> bytes:
    """A valid webm holding one VP8 video stream and no audio: decodes, but not as speech."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="webm") as container:
        stream = container.add_stream("libvpx", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for index in range(frames):
            image = np.full((64, 64, 3), index * 40, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()
