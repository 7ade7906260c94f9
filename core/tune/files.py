"""A tuned embedder's files under the tenant's folder (light; the functions run in the engine's helper process).

``$MUSUBI_HOME/tenants/<tenant>/tuned/<project>/v<version>/`` holds ``pairs.json`` (the training
data, recorded: its sha256 is in ``tuned_embedders.pairs_sha256``), ``params.json``, the trainer's
``state.pt`` while it trains, ``base.json``, ``result.json`` and the tuned ``model/``
(core/tune/train.py).  Every file is written to a temporary name, fsynced and renamed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from core.tune import pairs as P
from core.tune.train import PAIRS, PARAMS, write_json

MIN_TRAIN, MIN_HELD_OUT = 16, 8
MAX_HELD_OUT = 1000  # held-out queries evaluated (a sample beyond): two models embed them and their passages

__all__ = ["MIN_HELD_OUT", "MIN_TRAIN", "mine_into", "model_id_of", "read_result"]


def mine_into(root: str, work: str, params: dict[str, Any], base_model: str | None) -> dict[str, Any]:
    """Mine the pairs of the project at ``root`` into ``work``/pairs.json and write params.json.

    Returns the counts, the notes, the file's sha256 and the base model's folder and id; raises
    ValueError (with what to do) when there are too few pairs to train or to judge a model.
    """
    from core.rag.model import resolve_model

    mined = P.mine(root)
    counts = mined.counts()
    if len(mined.train) < MIN_TRAIN or len(mined.held_out) < MIN_HELD_OUT:
        raise ValueError(
            f"too few training pairs: {len(mined.train)} to train on and {len(mined.held_out)} held out (at least "
            f"{MIN_TRAIN} and {MIN_HELD_OUT} are needed); found per kind {counts['found']}. "
            + ("; ".join(mined.notes) + ". " if mined.notes else "")
            + "Add docstrings, accept trace links (musubi trace accept) or commit history, then try again.")
    if len(mined.held_out) > MAX_HELD_OUT:  # a deterministic sample, so a resumed job judges the same set
        mined.held_out = sorted(mined.held_out, key=_sample_key)[:MAX_HELD_OUT]
        mined.notes.append(f"held-out pairs sampled down to {MAX_HELD_OUT}")
        counts = mined.counts()
    folder = Path(work)
    folder.mkdir(parents=True, exist_ok=True)
    data = {"train": [p.to_json() for p in mined.train], "held_out": [p.to_json() for p in mined.held_out]}
    write_json(folder / PAIRS, data)
    sha = hashlib.sha256((folder / PAIRS).read_bytes()).hexdigest()
    spec = resolve_model(base_model)
    write_json(folder / PARAMS, {**params, "base": str(spec.path)})
    return {"counts": counts, "notes": mined.notes, "sha256": sha, "base_model": spec.model_id}


def model_id_of(folder: str) -> str:
    """``name@hash`` of a saved tuned model (as :func:`core.rag.model.resolve_model` names it)."""
    from core.rag.model import resolve_model

    return resolve_model(folder).model_id


def read_result(work: str) -> dict[str, Any] | None:
    """``result.json`` of a version (None when training has not finished)."""
    p = Path(work) / "result.json"
    return dict(json.loads(p.read_text("utf-8"))) if p.is_file() else None


def _sample_key(pair: P.Pair) -> bytes:
    """A stable order for sampling held-out pairs: the hash of the pair's text (same set on every resume)."""
    return hashlib.sha256(f"{pair.query}\0{pair.passage}".encode("utf-8", "surrogatepass")).digest()
