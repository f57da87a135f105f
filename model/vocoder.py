"""token2wav over HTTP: Step-Audio 2's speech tokens to 24 kHz audio, on a GPU elsewhere.

StepFun's token2wav (a flow-matching model and HiFi-GAN, conditioned on a prompt clip)
needs a GPU to run in real time, so it runs as a service beside the model server, and we
call it. There is no standard API for it; the contract here is the thinnest wrapper
around StepFun's `Token2wav(tokens, prompt_wav) -> wav bytes`:

    POST {url}   {"tokens": [int, ...], "prompt_wav": "<base64 WAV>" | null}
    200          audio/wav body (24 kHz mono 16-bit from token2wav; any WAV is accepted)

Tokens must be speech tokens only (0 <= id < 6561): the planner drops padding first.
"""

from __future__ import annotations

import base64
import io
import wave
from collections.abc import Sequence

import httpx
import numpy as np

from model.audio import resample
from model.base import Vocoder
from model.errors import PlannerError

__all__ = ["TOKEN2WAV_RATE", "HttpToken2Wav", "read_wav"]

TOKEN2WAV_RATE = 24000
VOCODER_UNREACHABLE = "the vocoder at {url} cannot be reached: {error}"
VOCODER_FAILED = "the vocoder at {url} answered HTTP {status}: {body}"
VOCODER_BAD_AUDIO = "the vocoder at {url} sent audio that is not 16-bit PCM WAV: {error}"


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Float32 mono samples and the rate of a 16-bit PCM WAV (channels are averaged)."""
    with wave.open(io.BytesIO(data), "rb") as reader:
        if reader.getsampwidth() != 2:
            raise ValueError(f"{8 * reader.getsampwidth()}-bit samples")
        channels, rate = reader.getnchannels(), reader.getframerate()
        frames = reader.readframes(reader.getnframes())
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    return samples, rate


class HttpToken2Wav(Vocoder):
    """A token2wav service at `url`; audio comes back resampled to `sample_rate` if need be."""

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 60.0,
        sample_rate: int = TOKEN2WAV_RATE,
        name: str = "token2wav-http",
    ) -> None:
        self.url = url
        self.sample_rate = sample_rate
        self.name = name
        self._client = client or httpx.AsyncClient(timeout=timeout_s)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def vocode(self, tokens: Sequence[int], prompt_wav: bytes | None = None) -> np.ndarray:
        if not tokens:
            return np.zeros(0, dtype=np.float32)
        prompt = base64.b64encode(prompt_wav).decode("ascii") if prompt_wav else None
        try:
            response = await self._client.post(self.url, json={"tokens": list(tokens), "prompt_wav": prompt})
        except httpx.HTTPError as error:
            raise PlannerError(VOCODER_UNREACHABLE.format(url=self.url, error=error)) from error
        if response.status_code >= 400:
            body = response.text[:300]
            raise PlannerError(VOCODER_FAILED.format(url=self.url, status=response.status_code, body=body))
        try:
            samples, rate = read_wav(response.content)
        except (wave.Error, EOFError, ValueError) as error:
            raise PlannerError(VOCODER_BAD_AUDIO.format(url=self.url, error=error)) from error
        return resample(samples, rate, self.sample_rate)
