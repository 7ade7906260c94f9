"""Text -> L2-normalised float32 vectors: the real model and a deterministic fake (HEAVY: numpy; torch lazily).

:class:`SentenceEmbedder` loads sentence-transformers and torch when constructed, so only the
embedding worker (``python -m core.rag.worker``), benchmarks and tests build one; the engine never does.
Defaults chosen by measurement on the shared 2-core machine (docs/search.md, "Embeddings and the
worker"; ``benchmarks/bench_embed.py``): half the cores for torch (one thread on a 2-core machine:
two threads lose badly when the other core is busy, and the engine needs that core) and batches of 16
(larger batches pad more and lost throughput on CPU).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from core.rag.errors import ModelUnavailable

if TYPE_CHECKING:
    from core.rag.model import ModelSpec

DEFAULT_BATCH = 16

__all__ = ["DEFAULT_BATCH", "Embedder", "FakeEmbedder", "SentenceEmbedder", "default_threads", "offline_env"]


def default_threads() -> int:
    """Half the CPUs, at least 1 and at most 4: leaves the engine (and the user) a core while indexing runs."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


class Embedder(Protocol):
    """What indexing and search need from a model: its id, its dimension and ``encode``."""

    model_id: str
    dim: int

    def encode(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        """One float32 row per text, each of unit L2 norm; shape ``(len(texts), dim)``."""
        ...


def offline_env() -> None:
    """Forbid the Hugging Face libraries any network access (the weights are local; nothing is downloaded)."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[name] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # its own thread pool would fight torch's
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def pick_device(device: str = "auto") -> str:
    """``cuda`` when asked or when ``auto`` and a CUDA device is present, else ``cpu``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelUnavailable(
            "[search] device = \"cuda\" but torch sees no CUDA device. Use device = \"auto\" or \"cpu\".",
        )
    return device


class SentenceEmbedder:
    """A sentence-transformers model loaded once from a local folder (HEAVY: imports torch)."""

    def __init__(self, spec: ModelSpec, *, device: str = "auto", threads: int | None = None,
                 batch: int | None = None) -> None:
        offline_env()
        import torch

        self.threads = threads or default_threads()
        torch.set_num_threads(self.threads)
        with _suppress_interop_error():
            torch.set_num_interop_threads(1)
        from sentence_transformers import SentenceTransformer

        self.device = pick_device(device)
        self.batch = batch or DEFAULT_BATCH
        try:
            self.model: Any = SentenceTransformer(str(spec.path), device=self.device, local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - any loader failure is the same story for the user
            raise ModelUnavailable(
                f"cannot load the embedding model from {spec.path}: {type(exc).__name__}: {exc}. Check the folder "
                "is a complete sentence-transformers model (or remove [search] model to use the packaged one).",
                path=str(spec.path),
            ) from None
        self.model.eval()
        self.model_id = spec.model_id
        self.dim: int = self.model.get_embedding_dimension() or 0
        self.max_seq_length: int = self.model.max_seq_length or 0

    def encode(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        """Normalised float32 embeddings; ``query`` is accepted for models that need a prefix (MiniLM does not)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = self.model.encode(list(texts), batch_size=self.batch, convert_to_numpy=True,
                                normalize_embeddings=True, show_progress_bar=False)
        return np.ascontiguousarray(out, dtype=np.float32)

    def tokens(self, text: str) -> int:
        """Word pieces of ``text`` with the model's tokenizer (special tokens included)."""
        return len(self.model.tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])


class _suppress_interop_error:
    """torch refuses to change the inter-op pool after it started (a second embedder in one process)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is RuntimeError


_WORD = re.compile(r"[A-Za-z0-9_]+|[^\sA-Za-z0-9_]")


class FakeEmbedder:
    """Deterministic hashed bag of words (signed feature hashing), normalised: fast plumbing tests, no model.

    Texts sharing words get similar vectors, the same text always the same vector, in any process.
    """

    def __init__(self, dim: int = 64, *, name: str = "fake") -> None:
        self.dim = dim
        self.model_id = f"{name}@dim{dim}"

    def encode(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()) or [""]:
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self.dim
                out[row, bucket] += 1.0 if digest[4] & 1 else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm == 0.0:  # every word cancelled out: any fixed unit vector keeps rows normalised
                out[row, 0] = 1.0
            else:
                out[row] /= norm
        return out
