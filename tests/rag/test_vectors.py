"""The per-project FAISS index: changes, atomic saves, and refusal of torn or foreign files (core/rag/vectors.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.rag.embedder import FakeEmbedder
from core.rag.errors import IndexCorrupt, WorkerRequestError
from core.rag.vectors import MANIFEST, VectorIndex

EMB = FakeEmbedder(32)
TEXTS = ["parse a json document", "open a network socket", "read a file from disk", "sort a list of numbers"]


def _built(folder: Path) -> VectorIndex:
    idx = VectorIndex.create(folder, model_id=EMB.model_id, dim=EMB.dim)
    idx.add([10, 20, 30, 40], EMB.encode(TEXTS))
    return idx


def test_add_search_remove_get(tmp_path: Path) -> None:
    idx = _built(tmp_path)
    scores, ids = idx.search(EMB.encode(["parse json document"]), 2)
    assert ids.shape == (1, 2) and ids[0, 0] == 10 and scores[0, 0] > scores[0, 1]
    assert idx.add([10], EMB.encode(["sort numbers"])) == 1  # re-adding an id replaces it
    assert idx.count == 4
    assert idx.search(EMB.encode(["sort numbers"]), 1)[1][0, 0] == 10
    assert idx.remove([20, 999]) == 1 and idx.count == 3
    found, vecs = idx.get([30, 20])
    assert found.tolist() == [30] and np.allclose(vecs[0], EMB.encode([TEXTS[2]])[0])
    scores, ids = idx.search(EMB.encode(["x", "y"]), 10)  # more than there are: padded with -1
    assert ids.shape == (2, 10) and (ids[:, 3:] == -1).all() and np.isneginf(scores[:, 3:]).all()


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    idx = _built(tmp_path)
    with pytest.raises(WorkerRequestError, match="shape"):
        idx.add([1, 2], EMB.encode(["one"]))
    with pytest.raises(WorkerRequestError, match="unique"):
        idx.add([1, 1], EMB.encode(["one", "two"]))
    with pytest.raises(WorkerRequestError, match="k must be"):
        idx.search(EMB.encode(["one"]), 0)
    assert idx.count == 4  # a refused request changes nothing


def test_save_and_reopen(tmp_path: Path) -> None:
    idx = _built(tmp_path)
    assert idx.dirty
    manifest = idx.save()
    assert not idx.dirty and manifest["count"] == 4 and manifest["model_id"] == EMB.model_id
    idx.remove([40])
    second = idx.save()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == sorted([MANIFEST, second["file"]])  # the older file goes once the new manifest is durable
    again = VectorIndex.open(tmp_path, model_id=EMB.model_id, dim=EMB.dim)
    assert again.count == 3
    q = EMB.encode(["read a file"])
    assert again.search(q, 3)[1].tolist() == idx.search(q, 3)[1].tolist()


def test_a_crash_between_index_file_and_manifest_keeps_the_previous_save(tmp_path: Path) -> None:
    idx = _built(tmp_path)
    first = idx.save()
    (tmp_path / "vectors-0123456789ab.faiss").write_bytes(b"new index never named by a manifest")
    assert VectorIndex.open(tmp_path, model_id=EMB.model_id, dim=EMB.dim).count == first["count"]


def _corrupt(reason: str, folder: Path) -> IndexCorrupt:
    with pytest.raises(IndexCorrupt) as got:
        VectorIndex.open(folder, model_id=EMB.model_id, dim=EMB.dim)
    assert got.value.extra["reason"] == reason, got.value.message
    assert "rebuilt" in got.value.message
    return got.value


def test_torn_and_foreign_indexes_are_detected(tmp_path: Path) -> None:
    manifest = _built(tmp_path).save()
    path = tmp_path / manifest["file"]
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])  # truncated
    _corrupt("checksum", tmp_path)
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF  # same size, one byte changed
    path.write_bytes(bytes(flipped))
    _corrupt("checksum", tmp_path)
    path.write_bytes(good)
    with pytest.raises(IndexCorrupt) as got:  # another model: never mixed, rebuilt
        VectorIndex.open(tmp_path, model_id="other-model@123", dim=EMB.dim)
    assert got.value.extra["reason"] == "model_mismatch"
    with pytest.raises(IndexCorrupt) as got:
        VectorIndex.open(tmp_path, model_id=EMB.model_id, dim=EMB.dim + 1)
    assert got.value.extra["reason"] == "dim_mismatch"
    path.unlink()
    _corrupt("unreadable", tmp_path)
    (tmp_path / MANIFEST).write_text("{not json")
    _corrupt("bad_manifest", tmp_path)
    (tmp_path / MANIFEST).write_text(json.dumps({**manifest, "file": "../elsewhere.faiss"}))
    _corrupt("bad_manifest", tmp_path)
    (tmp_path / MANIFEST).write_text(json.dumps({**manifest, "format": 99}))
    _corrupt("format", tmp_path)
    (tmp_path / MANIFEST).unlink()
    _corrupt("missing_manifest", tmp_path)


def test_a_consistent_file_with_a_wrong_count_is_refused(tmp_path: Path) -> None:
    manifest = _built(tmp_path).save()
    (tmp_path / MANIFEST).write_text(json.dumps({**manifest, "count": 5}))
    _corrupt("count_mismatch", tmp_path)


def _clustered(n: int, dim: int = 32, centres: int = 40, seed: int = 0) -> np.ndarray:
    """Unit vectors around a few centres, like embeddings of code (random ones are IVF's worst case)."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, dim)).astype(np.float32)
    v = c[rng.integers(0, centres, n)] + 0.3 * rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_a_large_index_switches_to_ivf_and_keeps_working(tmp_path: Path) -> None:
    vecs = _clustered(6000)
    ids = np.arange(1000, 7000)
    flat = VectorIndex.create(tmp_path / "flat", model_id="m", dim=32)
    flat.ivf_at = 0  # never switches: the exact answer
    flat.add(ids, vecs)
    idx = VectorIndex.create(tmp_path / "ivf", model_id="m", dim=32)
    idx.ivf_at = 5000
    idx.add(ids, vecs)
    assert idx.kind == "flat-ip"
    manifest = idx.save()
    assert idx.kind == manifest["kind"] == "ivf-ip" and manifest["count"] == 6000 and manifest["nprobe"] >= 8
    queries = _clustered(50, seed=1)
    exact = flat.search(queries, 10)[1]
    approx = idx.search(queries, 10)[1]
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact, strict=True)])
    assert recall >= 0.9
    assert idx.remove([1000, 1001, 5]) == 2 and idx.count == 5998
    man = idx.save()  # a small change to an IVF index: a delta over the IVF base
    assert man["kind"] == "ivf-ip" and man["delta"]["removed"] == 2
    again = VectorIndex.open(tmp_path / "ivf", model_id="m", dim=32)
    assert again.kind == "ivf-ip" and again.count == 5998
    assert again.search(queries, 10)[1].tolist() == idx.search(queries, 10)[1].tolist()
    found, got = idx.get([1002, 1000])
    assert found.tolist() == [1002] and np.allclose(got[0], vecs[2])
    idx.add([1000], vecs[:1])
    idx.save()
    again = VectorIndex.open(tmp_path / "ivf", model_id="m", dim=32)
    assert again.kind == "ivf-ip" and again.count == 5999
    assert again.search(vecs[:1], 1)[1][0, 0] == 1000
    assert again.remove([1003]) == 1 and again.get([1004])[0].tolist() == [1004]
    again.clear()
    assert again.kind == "flat-ip" and again.count == 0


def _many(folder: Path, n: int = 400) -> tuple[VectorIndex, np.ndarray]:
    vecs = _clustered(n)
    idx = VectorIndex.create(folder, model_id="m", dim=32)
    idx.add(np.arange(n), vecs)
    idx.save()
    return idx, vecs


def test_a_small_change_is_saved_as_a_delta_and_reopens_equal(tmp_path: Path) -> None:
    idx, vecs = _many(tmp_path)
    base = json.loads((tmp_path / MANIFEST).read_text())["file"]
    idx.remove([3, 7])
    idx.add([5, 1000], _clustered(2, seed=5))  # 5 replaced, 1000 new
    man = idx.save()
    assert man["file"] == base and man["delta"]["added"] == 2 and man["delta"]["removed"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([MANIFEST, base, man["delta"]["file"]])
    again = VectorIndex.open(tmp_path, model_id="m", dim=32)
    assert again.count == idx.count == 399
    q = _clustered(20, seed=9)
    assert again.search(q, 10)[1].tolist() == idx.search(q, 10)[1].tolist()
    assert np.allclose(again.get([5])[1], idx.get([5])[1]) and not len(again.get([3])[0])
    # The delta is cumulative: a later save replaces it; changes undone leave the base alone.
    again.remove([1000])
    again.add([3], vecs[3:4])
    man2 = again.save()
    assert man2["delta"]["added"] == 2 and man2["delta"]["file"] != man["delta"]["file"]
    assert not (tmp_path / man["delta"]["file"]).exists()
    third = VectorIndex.open(tmp_path, model_id="m", dim=32)
    assert third.search(q, 10)[1].tolist() == again.search(q, 10)[1].tolist()


def test_many_changes_write_a_new_base(tmp_path: Path) -> None:
    idx, _ = _many(tmp_path)
    idx.remove(list(range(100)))
    man = idx.save()
    assert "delta" not in man and man["base_count"] == man["count"] == 300
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([MANIFEST, man["file"]])


def test_a_torn_delta_is_detected(tmp_path: Path) -> None:
    idx, _ = _many(tmp_path)
    idx.remove([1])
    man = idx.save()
    delta = tmp_path / man["delta"]["file"]
    good = delta.read_bytes()
    delta.write_bytes(good[:-10])
    _corrupt_m("checksum", tmp_path)
    delta.unlink()
    _corrupt_m("unreadable", tmp_path)
    delta.write_bytes(good)
    (tmp_path / MANIFEST).write_text(json.dumps({**man, "count": 5}))
    _corrupt_m("count_mismatch", tmp_path)


def test_a_crash_while_writing_a_delta_keeps_the_previous_save(tmp_path: Path) -> None:
    idx, _ = _many(tmp_path)
    before = (tmp_path / MANIFEST).read_bytes()
    idx.remove([1])
    idx.save()
    (tmp_path / MANIFEST).write_bytes(before)  # as if the crash came before the manifest's rename
    assert VectorIndex.open(tmp_path, model_id="m", dim=32).count == 400


def _corrupt_m(reason: str, folder: Path) -> None:
    with pytest.raises(IndexCorrupt) as got:
        VectorIndex.open(folder, model_id="m", dim=32)
    assert got.value.extra["reason"] == reason, got.value.message
