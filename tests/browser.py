"""Debian's Chromium driven by Playwright, with a fake microphone, for the playground's browser tests.

Nothing is downloaded: Playwright launches the system's /usr/bin/chromium (deploy/test.sh
installs it). Chromium's fake capture device plays a WAV file as the microphone; it takes
16-bit PCM at 48 kHz best, and with `%noloop` it plays the file once, from the start each
time a page opens the microphone, so a push-to-talk recording hears the whole clip. Without
it (`loop=True`) the file plays over and over, as a user who keeps talking.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile
from playwright.sync_api import Browser, Page, sync_playwright

from model.audio import resample

__all__ = ["CHROMIUM", "chromium", "fake_microphone", "open_page", "wav_seconds"]

CHROMIUM = Path("/usr/bin/chromium")
MIC_RATE = 48_000
LEAD_SECONDS = 0.3
"""Silence before the speech: the recorder starts a moment after the microphone opens."""

_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


def wav_seconds(wav: bytes) -> float:
    info = soundfile.info(io.BytesIO(wav))
    return float(info.frames / info.samplerate)


def fake_microphone(wav: bytes, path: Path) -> Path:
    """Write `wav` as Chromium's fake microphone plays it best: 48 kHz mono 16-bit, after a short silence."""
    audio, rate = soundfile.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    speech = resample(audio.mean(axis=1), rate, MIC_RATE)
    lead = np.zeros(int(LEAD_SECONDS * MIC_RATE), np.float32)
    soundfile.write(path, np.concatenate([lead, speech]), MIC_RATE, subtype="PCM_16")
    return path


@contextmanager
def chromium(microphone: Path | None = None, *, loop: bool = False) -> Iterator[Browser]:
    """Headless Chromium whose microphone plays `microphone` (a WAV from `fake_microphone`),
    once or, with `loop`, over and over."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: deploy/test.sh installs Debian's chromium")
    args = list(_ARGS)
    if microphone is not None:
        args.append(f"--use-file-for-fake-audio-capture={microphone}{'' if loop else '%noloop'}")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def open_page(browser: Browser, base_url: str, path: str = "/") -> Iterator[Page]:
    """A fresh profile's page at `base_url` + `path`, allowed to use the microphone."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.grant_permissions(["microphone"], origin=base_url)
    try:
        page = context.new_page()
        page.goto(base_url + path)
        page.wait_for_selector("body[data-ready='true']")
        yield page
    finally:
        context.close()
