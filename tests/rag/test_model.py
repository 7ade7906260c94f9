"""Where the weights are and their one-time extraction into the cache (core/rag/model.py)."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from core.rag import model
from core.rag.errors import ModelUnavailable


def _zip(path: Path, weights: bytes = b"W" * 5000) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("1_Pooling/config.json", '{"pooling_mode_mean_tokens": true}')
        zf.writestr("modules.json", "[]")
        zf.writestr("config.json", "{}")
        zf.writestr("model.safetensors", weights)
    return path


def test_packaged_zip_is_found_without_importing_the_package() -> None:
    code = ("import sys; from core.rag.model import packaged_zip; p = packaged_zip(); "
            "print(p.name, p.stat().st_size > 10_000_000, 'all_minilm_l6_v2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert out.stdout.split() == ["model.zip", "True", "False"]  # the package's __init__ prints; never run it


def test_extraction_is_idempotent_and_verified(tmp_path: Path) -> None:
    z = _zip(tmp_path / "m.zip")
    first = model.ensure_extracted(tmp_path / "cache", z)
    assert (first / "model.safetensors").read_bytes() == b"W" * 5000
    marker = json.loads((first / model.MARKER).read_text())
    assert marker["files"]["model.safetensors"] == 5000
    mtime = (first / "model.safetensors").stat().st_mtime_ns
    assert model.ensure_extracted(tmp_path / "cache", z) == first
    assert (first / "model.safetensors").stat().st_mtime_ns == mtime  # not extracted a second time
    assert [p.name for p in (tmp_path / "cache" / "models").iterdir() if p.name.startswith(".extract-")] == []


def test_a_damaged_extraction_is_repaired(tmp_path: Path) -> None:
    z = _zip(tmp_path / "m.zip")
    target = model.ensure_extracted(tmp_path / "cache", z)
    with open(target / "model.safetensors", "r+b") as f:  # torn: a crash or a disk problem cut the file
        f.truncate(100)
    (target / model.MARKER).touch()
    leftover = tmp_path / "cache" / "models" / ".extract-crashed"  # a crashed extraction's temp folder
    leftover.mkdir()
    (leftover / "model.safetensors").write_bytes(b"partial")
    again = model.ensure_extracted(tmp_path / "cache", z)
    assert again == target
    assert (target / "model.safetensors").read_bytes() == b"W" * 5000
    assert not leftover.exists()
    (target / model.MARKER).unlink()  # the marker is written last: without it the folder is incomplete
    assert model.ensure_extracted(tmp_path / "cache", z) == target
    assert (target / model.MARKER).exists()


def _extract(args: tuple[str, str]) -> str:
    return str(model.ensure_extracted(Path(args[0]), Path(args[1])))


def test_concurrent_extractions_agree(tmp_path: Path) -> None:
    z = _zip(tmp_path / "m.zip", os.urandom(3_000_000))
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        got = pool.map(_extract, [(str(tmp_path / "cache"), str(z))] * 4)
    assert len(set(got)) == 1
    target = Path(got[0])
    with zipfile.ZipFile(z) as zf:
        assert (target / "model.safetensors").read_bytes() == zf.read("model.safetensors")
    assert sorted(p.name for p in target.parent.iterdir()) == [".extract.lock", target.name]


def test_a_damaged_archive_is_a_clear_error(tmp_path: Path) -> None:
    z = _zip(tmp_path / "m.zip", b"A" * 4000)
    data = bytearray(z.read_bytes())
    at = data.index(b"model.safetensors") + 60  # inside the stored weights of the local entry
    data[at:at + 40] = b"B" * 40
    z.write_bytes(bytes(data))
    with pytest.raises(ModelUnavailable, match="damaged"):
        model.ensure_extracted(tmp_path / "cache", z)
    assert not (tmp_path / "cache" / "models").exists() or not any(
        p.name.startswith("all-MiniLM") for p in (tmp_path / "cache" / "models").iterdir())


def test_configured_model_folder_and_its_id(tmp_path: Path) -> None:
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "modules.json").write_text("[]")
    (folder / "model.safetensors").write_bytes(b"one")
    spec = model.resolve_model(str(folder))
    assert spec.name == "my-model" and spec.path == folder.resolve()
    (folder / "model.safetensors").write_bytes(b"two")  # other weights: another id, so indexes refuse to mix
    assert model.resolve_model(str(folder)).model_id != spec.model_id
    with pytest.raises(ModelUnavailable, match="not a sentence-transformers model folder"):
        model.resolve_model(str(tmp_path / "missing"))
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelUnavailable, match="holds no model weights"):
        model.resolve_model(str(folder))
