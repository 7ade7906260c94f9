"""One FAISS vector index per tenant and project folder, saved atomically (HEAVY: numpy, faiss).

An ``IndexIDMap2`` over a flat inner-product index: ids are the chunk ids (int64), vectors are
L2-normalised so inner product is cosine similarity.  From :data:`IVF_AT` vectors on, a save turns
it into an IVF index (inverted lists, a hash-table id map so removal and lookup by id still work),
because an exact scan then no longer fits the query latency target.  On disk a folder holds::

    vectors-<sha12>.faiss   the serialised index (a new name per save): the *base*
    delta-<sha12>.npz       optional: what changed since the base (ids removed, ids and vectors added)
    vectors.json            the manifest: format, model id, dim, count, base file (name, bytes, sha256,
                            count) and the delta file (name, bytes, sha256) if any

A small change to a large index (a one-file re-index of 85k chunks) must not rewrite every vector,
so :meth:`VectorIndex.save` writes only a delta file when the changes since the base are at most
:data:`DELTA_SHARE` of the index (the delta is cumulative: one file, replaced at each save); else,
or when the index changed kind, it writes a new base.  Either way the new file is written (fsync,
rename), then the manifest (fsync, rename), the folder fsynced, and only then are older files
deleted: a crash at any point leaves the previous save intact and consistent.
:meth:`VectorIndex.open` checks the manifest, the size and checksum of the files it names, the model
id and the dimension, and raises
:class:`~core.rag.errors.IndexCorrupt` on any mismatch, so the caller rebuilds from the chunk table
instead of serving a torn index.  Indexes never mix models: opening with another model id fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from core.rag.errors import IndexCorrupt, WorkerRequestError

FORMAT_VERSION = 2
READS = (1, 2)  # format 1: a base without delta
MANIFEST = "vectors.json"
KIND_FLAT = "flat-ip"
KIND_IVF = "ivf-ip"
_HASHTABLE = faiss.DirectMap.Hashtable  # type: ignore[attr-defined]  # (missing from faiss's stubs)
IVF_AT = 50_000
"""Vectors at which :meth:`VectorIndex.save` turns a flat index into IVF (measured; docs/search.md)."""
DELTA_SHARE = 0.05
"""A save writes a delta file instead of a new base while the changes since the base stay within this share."""

__all__ = ["FORMAT_VERSION", "MANIFEST", "VectorIndex"]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes | memoryview) -> None:
    """Write ``data`` to ``path`` through a temporary file: fsync, then rename over it."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _index_ids(index: Any) -> np.ndarray:
    """Every id stored in an ``IndexIDMap2`` or an IVF index."""
    if isinstance(index, faiss.IndexIDMap2):
        return faiss.vector_to_array(index.id_map).astype(np.int64)
    invlists = faiss.extract_index_ivf(index).invlists
    assert invlists is not None  # an IVF index always has its lists
    parts = [faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
             for i in range(invlists.nlist) if invlists.list_size(i)]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


def _nprobe(nlist: int) -> int:
    """Lists searched per query: ~1/16 of them (at least 8) kept recall@10 >= 0.95 of flat (docs/search.md)."""
    return max(8, nlist // 16)


class VectorIndex:
    """Vectors of one tenant's project: add, remove, search, save; built for exactly one model."""

    def __init__(self, folder: Path, model_id: str, dim: int, index: Any, *, ivf_at: int = IVF_AT) -> None:
        self.folder = folder
        self.model_id = model_id
        self.dim = dim
        self._index = index
        self.ivf_at = ivf_at
        """From this many vectors on, a save switches the flat index to IVF (0: never)."""
        self.dirty = False
        """True when there are changes :meth:`save` has not written yet."""
        # Since the last base file: ids of the base no longer there (or replaced), ids added after it.
        # ``_all`` is every id in the index.  ``_base`` is None until a base exists (create, clear).
        self._all: set[int] = set()
        self._removed: set[int] = set()
        self._added: set[int] = set()
        self._base: dict[str, Any] | None = None

    # -- opening ----------------------------------------------------------------------------

    @classmethod
    def create(cls, folder: str | os.PathLike[str], *, model_id: str, dim: int) -> VectorIndex:
        """A new empty index for ``folder`` (nothing is written until :meth:`save`)."""
        if dim <= 0:
            raise WorkerRequestError(f"vector dimension must be positive, got {dim}.")
        return cls(Path(folder), model_id, dim, faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    @staticmethod
    def exists(folder: str | os.PathLike[str]) -> bool:
        """A manifest is present (the index may still turn out corrupt on :meth:`open`)."""
        return (Path(folder) / MANIFEST).exists()

    @classmethod
    def open(cls, folder: str | os.PathLike[str], *, model_id: str, dim: int) -> VectorIndex:
        """The saved index of ``folder``; :class:`IndexCorrupt` when it is torn, truncated or for another model."""
        folder = Path(folder)

        def corrupt(reason: str, detail: str) -> IndexCorrupt:
            return IndexCorrupt(
                f"the vector index in {folder} cannot be used ({detail}); it must be rebuilt from the chunk table "
                "(re-run the index).", reason=reason, path=str(folder))

        try:
            raw = (folder / MANIFEST).read_bytes()
        except FileNotFoundError:
            raise corrupt("missing_manifest", f"no {MANIFEST}") from None
        except OSError as exc:
            raise corrupt("unreadable", f"{MANIFEST}: {exc.strerror}") from None
        try:
            man = json.loads(raw)
            fmt, kind, name = man["format"], man["kind"], man["file"]
            m_model, m_dim, m_count = man["model_id"], int(man["dim"]), int(man["count"])
            m_bytes, m_sha = int(man["bytes"]), str(man["sha256"])
            base_count = int(man.get("base_count", m_count))
            delta = man.get("delta")
            if delta is not None:
                d_name, d_bytes, d_sha = delta["file"], int(delta["bytes"]), str(delta["sha256"])
        except (ValueError, KeyError, TypeError):
            raise corrupt("bad_manifest", f"{MANIFEST} is not a valid manifest") from None
        if fmt not in READS or kind not in (KIND_FLAT, KIND_IVF):
            raise corrupt("format", f"format {fmt!r}/{kind!r}, this version reads {READS}/{KIND_FLAT}, "
                          f"{KIND_IVF}")
        if m_model != model_id:
            raise corrupt("model_mismatch", f"built with model {m_model}, the configured model is {model_id}")
        if m_dim != dim:
            raise corrupt("dim_mismatch", f"dimension {m_dim}, the model gives {dim}")
        if not isinstance(name, str) or "/" in name or not name.startswith("vectors-"):
            raise corrupt("bad_manifest", f"index file name {name!r} is not allowed")
        if delta is not None and (not isinstance(d_name, str) or "/" in d_name or not d_name.startswith("delta-")):
            raise corrupt("bad_manifest", f"delta file name {d_name!r} is not allowed")

        def read(fname: str, size: int, sha: str) -> bytes:
            try:
                data = (folder / fname).read_bytes()
            except OSError as exc:
                raise corrupt("unreadable", f"{fname}: {exc.strerror}") from None
            if len(data) != size:
                raise corrupt("checksum", f"{fname} has {len(data)} bytes, the manifest says {size} (truncated?)")
            if hashlib.sha256(data).hexdigest() != sha:
                raise corrupt("checksum", f"{fname} does not match its checksum")
            return data

        data = read(name, m_bytes, m_sha)
        try:
            index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except RuntimeError as exc:
            raise corrupt("unreadable", f"faiss cannot read {name}: {str(exc).splitlines()[0]}") from None
        del data
        if index.d != dim or index.ntotal != base_count:
            raise corrupt("count_mismatch", f"{index.ntotal} vectors of dimension {index.d} in the file")
        if kind == KIND_IVF:
            ivf = faiss.extract_index_ivf(index)
            ivf.nprobe = int(man.get("nprobe") or _nprobe(ivf.nlist))
            ivf.set_direct_map_type(_HASHTABLE)  # remove() and get() by id need it
        out = cls(folder, model_id, dim, index)
        out._all = set(_index_ids(index).tolist())
        out._base = {"file": name, "bytes": m_bytes, "sha256": m_sha, "count": base_count, "kind": kind}
        if delta is not None:
            raw = read(d_name, d_bytes, d_sha)
            try:
                with np.load(io.BytesIO(raw), allow_pickle=False) as z:
                    removed, added, vecs = z["removed"], z["added"], z["vecs"]
                if removed.dtype != np.int64 or added.dtype != np.int64 or vecs.shape != (len(added), dim):
                    raise ValueError("shapes")
            except (OSError, ValueError, KeyError, zipfile.BadZipFile):
                raise corrupt("unreadable", f"{d_name} is not a delta file") from None
            if len(removed):
                index.remove_ids(removed)
            if len(added):
                index.add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32), added)
            out._removed, out._added = set(removed.tolist()), set(added.tolist())
            out._all.difference_update(out._removed)
            out._all.update(out._added)
        if index.ntotal != m_count:
            raise corrupt("count_mismatch", f"{index.ntotal} vectors after the delta, the manifest says {m_count}")
        return out

    @property
    def kind(self) -> str:
        """``flat-ip`` (exact) or ``ivf-ip`` (inverted lists; from :attr:`ivf_at` vectors on)."""
        return KIND_FLAT if isinstance(self._index, faiss.IndexIDMap2) else KIND_IVF

    # -- changes ----------------------------------------------------------------------------

    @property
    def count(self) -> int:
        """Vectors in the index (saved or not)."""
        return int(self._index.ntotal)

    def _ids(self, ids: Any) -> np.ndarray:
        arr = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        return arr

    def _vecs(self, vecs: Any, n: int | None = None) -> np.ndarray:
        arr = np.ascontiguousarray(vecs, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr.reshape(-1, self.dim) if arr.size % self.dim == 0 else arr
        if arr.ndim != 2 or arr.shape[1] != self.dim or (n is not None and arr.shape[0] != n):
            raise WorkerRequestError(
                f"vectors have shape {tuple(arr.shape)}, expected ({n if n is not None else 'n'}, {self.dim}).")
        return arr

    def add(self, ids: Any, vecs: Any) -> int:
        """Add (or replace) the vectors of ``ids``; returns how many were added."""
        id_arr = self._ids(ids)
        if len(np.unique(id_arr)) != len(id_arr):
            raise WorkerRequestError("ids given to add() must be unique within one call.")
        arr = self._vecs(vecs, len(id_arr))
        if not len(id_arr):
            return 0
        self._index.remove_ids(id_arr)  # re-adding an id replaces it instead of duplicating it
        self._index.add_with_ids(arr, id_arr)
        for cid in id_arr.tolist():
            if cid in self._all and cid not in self._added:
                self._removed.add(cid)  # a base vector replaced
            self._added.add(cid)
            self._all.add(cid)
        self.dirty = True
        return len(id_arr)

    def remove(self, ids: Any) -> int:
        """Remove ``ids`` (absent ones are ignored); returns how many were removed."""
        id_arr = self._ids(ids)
        if not len(id_arr):
            return 0
        removed = int(self._index.remove_ids(id_arr))
        for cid in id_arr.tolist():
            if cid in self._all:
                self._all.discard(cid)
                if cid in self._added:
                    self._added.discard(cid)  # added after the base (if it replaced a base vector, that stays removed)
                else:
                    self._removed.add(cid)
        self.dirty = self.dirty or removed > 0
        return removed

    def clear(self) -> None:
        """Drop every vector (a rebuild starts here, flat again)."""
        self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        self._all, self._added, self._removed, self._base = set(), set(), set(), None
        self.dirty = True

    def _to_ivf(self) -> None:
        """Rebuild as IVF: k-means on a sample, every vector moved over under its id (same ids, same vectors)."""
        n = self.count
        nlist = max(16, int(2 * n ** 0.5))
        index = faiss.index_factory(self.dim, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.extract_index_ivf(index)
        ivf.cp.niter = 10  # k-means is the slow part of the switch; 39 points per list is faiss's minimum
        ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        vecs = self._index.index.reconstruct_n(0, n)
        sample = np.random.default_rng(0).choice(n, size=min(n, 39 * nlist), replace=False)
        index.train(vecs[np.sort(sample)])
        ivf.set_direct_map_type(_HASHTABLE)
        index.add_with_ids(vecs, ids)
        ivf.nprobe = _nprobe(nlist)
        self._index = index

    def ids(self) -> np.ndarray:
        """Every id in the index (saved or not), ascending."""
        return np.array(sorted(self._all), dtype=np.int64)

    def get(self, ids: Any) -> tuple[np.ndarray, np.ndarray]:
        """(found ids, their vectors): lets an indexer reuse the vector of unchanged text under a new id."""
        found, rows = [], []
        for key in self._ids(ids).tolist():
            try:
                rows.append(self._index.reconstruct(key))
            except RuntimeError:  # not in the index
                continue
            found.append(key)
        out = np.array(rows, dtype=np.float32).reshape(len(found), self.dim)
        return np.array(found, dtype=np.int64), out

    def search(self, vecs: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, ids) per query row, best first; missing places have id -1 and score -inf."""
        arr = self._vecs(vecs)
        if k <= 0:
            raise WorkerRequestError(f"k must be at least 1, got {k}.")
        kk = min(k, max(self.count, 1))
        scores, ids = self._index.search(arr, kk)
        if kk < k:  # pad so the caller always gets (n, k)
            pad = k - kk
            scores = np.hstack([scores, np.full((len(arr), pad), -np.inf, dtype=np.float32)])
            ids = np.hstack([ids, np.full((len(arr), pad), -1, dtype=np.int64)])
        scores[ids < 0] = -np.inf
        return scores.astype(np.float32), ids.astype(np.int64)

    # -- saving -----------------------------------------------------------------------------

    def save(self) -> dict[str, Any]:
        """Write the index (a delta file after small changes, else a new base) and its manifest atomically.

        Returns the manifest.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.kind == KIND_FLAT and self.ivf_at and self.count >= self.ivf_at:
            self._to_ivf()
            self._base = None  # another kind of index: a new base
        changes = len(self._added) + len(self._removed)
        delta: dict[str, Any] | None = None
        if self._base is not None and self._base["kind"] == self.kind and changes and \
                changes <= DELTA_SHARE * self.count:
            delta = self._write_delta()
        elif self._base is None or changes or not (self.folder / self._base["file"]).exists():
            data = faiss.serialize_index(self._index).data  # a view: no second copy of a 150 MB index
            sha = hashlib.sha256(data).hexdigest()
            name = f"vectors-{sha[:12]}.faiss"
            _write_atomic(self.folder / name, data)
            self._base = {"file": name, "bytes": len(data), "sha256": sha, "count": self.count, "kind": self.kind}
            self._added, self._removed = set(), set()
        base = self._base
        manifest = {"format": FORMAT_VERSION, "kind": self.kind, "model_id": self.model_id, "dim": self.dim,
                    "count": self.count, "file": base["file"], "bytes": base["bytes"], "sha256": base["sha256"],
                    "base_count": base["count"]}
        if delta is not None:
            manifest["delta"] = delta
        if self.kind == KIND_IVF:
            manifest["nprobe"] = faiss.extract_index_ivf(self._index).nprobe
        _write_atomic(self.folder / MANIFEST, json.dumps(manifest, indent=1).encode())
        _fsync_dir(self.folder)
        keep = {base["file"], delta["file"] if delta else ""}
        for old in [*self.folder.glob("vectors-*.faiss"), *self.folder.glob("delta-*.npz")]:
            if old.name not in keep:  # only after the new manifest is durable
                with contextlib.suppress(OSError):
                    old.unlink()
        for tmp in [*self.folder.glob(".vectors*.tmp-*"), *self.folder.glob(".delta*.tmp-*")]:
            with contextlib.suppress(OSError):
                tmp.unlink()
        self.dirty = False
        return manifest

    def _write_delta(self) -> dict[str, Any]:
        """Write the changes since the base as one file (ids removed from the base, ids and vectors added)."""
        added = np.asarray(sorted(self._added), dtype=np.int64)
        found, vecs = self.get(added)
        buf = io.BytesIO()
        np.savez(buf, removed=np.asarray(sorted(self._removed), dtype=np.int64), added=found, vecs=vecs)
        data = buf.getvalue()
        sha = hashlib.sha256(data).hexdigest()
        name = f"delta-{sha[:12]}.npz"
        _write_atomic(self.folder / name, data)
        return {"file": name, "bytes": len(data), "sha256": sha, "added": len(found), "removed": len(self._removed)}
