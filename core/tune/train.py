"""Training and evaluation of a tuned embedder: ``python -m core.tune.train WORK`` (HEAVY: torch).

Runs in its own worker process, started by the ``tune.embed`` job (core/tune/service.py); the engine
and the CLI never import this module.  Not inside the embedding worker (core/rag/worker.py): that
process answers searches one request at a time, and minutes of training there would stall search.

WORK (a version's folder under the tenant's folder) holds:

- ``pairs.json`` (input): ``{"train": [pair...], "held_out": [pair...]}``, pairs as core/tune/pairs.py;
- ``params.json`` (input): base model folder, epochs, batch, learning rate, seed, time budget;
- ``state.pt``: the last training checkpoint (weights, optimizer, schedule, step, seconds spent, the
  random generator's state),
  written atomically (temporary file, fsync, rename) every ``checkpoint_s`` seconds or
  ``checkpoint_steps`` steps: a run killed with -9 resumes from it, on the same batch order;
- ``base.json``: the held-out measures of the base model (computed once, kept across resumes);
- ``model/``: the tuned model (sentence-transformers folder), renamed into place when complete;
- ``result.json``: measures of both models, steps, seconds, why training stopped (written last).

Why a plain torch loop and not sentence-transformers' ``SentenceTransformerTrainer``: the Trainer
needs ``datasets`` and ``accelerate``, which the project does not ship (pyarrow and friends, ~100 MB
for one loop), and it checkpoints in its own layout without an exact resume of the batch order
under a wall-clock budget.  The loop uses the library's model and its
``MultipleNegativesRankingLoss`` (in-batch negatives, both directions) unchanged, so the objective is the library's.

Stdout carries one JSON object per line (``progress``, ``checkpoint``, ``done``, ``error``); the log goes
to stderr.  The process exits when its parent (the engine) is gone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("musubi.tune.train")

STATE, BASE, RESULT, MODEL, PAIRS, PARAMS = "state.pt", "base.json", "result.json", "model", "pairs.json", "params.json"
# lr 1.5e-4: with the interpolation below, measured above 1e-4 on every one of five benchmark runs (four training
# seeds and another evaluation sample, docs/finetune.md "Measured"); 2e-4 did worse
DEFAULTS: dict[str, Any] = {"epochs": 1, "batch": 32, "lr": 1.5e-4, "warmup": 0.1, "seed": 0, "budget_s": 600.0,
                            "checkpoint_s": 60.0, "checkpoint_steps": 0, "scale": 20.0,
                            # symmetric in-batch loss: each query against the batch's passages AND each passage against
                            # the batch's queries (sentence-transformers' MultipleNegativesRankingLoss, both directions)
                            "directions": ["query_to_doc", "doc_to_query"],
                            # the saved model is base + interpolate * (trained - base): see interpolate()
                            "interpolate": 0.5}


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON atomically (temporary file in the folder, fsync, rename, fsync the folder)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def same_file_negatives(pairs: Sequence[dict[str, str]], seed: int) -> list[str]:
    """A hard negative per pair: another pair's passage from the same file (code that shares its names and
    imports), else another file's; deterministic for ``seed``."""
    by_file: dict[str, list[int]] = {}
    for i, p in enumerate(pairs):
        by_file.setdefault(p["path"], []).append(i)
    rng = random.Random(seed + 7)
    out = []
    for p in pairs:
        others = [j for j in by_file[p["path"]] if pairs[j]["passage"] != p["passage"]]
        if not others:
            others = [j for j in (rng.randrange(len(pairs)) for _ in range(8)) if pairs[j]["path"] != p["path"]][:1]
        out.append(pairs[rng.choice(others)]["passage"] if others else p["passage"])
    return out


def batches(pairs: Sequence[dict[str, str]], batch: int, epochs: int, seed: int,
            negatives: Sequence[str] | None = None) -> list[list[int]]:
    """Deterministic batches of pair indexes for every epoch; a query or passage already in a batch waits for
    the next one, since in-batch negatives would otherwise push a pair's own duplicate away."""
    out: list[list[int]] = []
    for epoch in range(epochs):
        order = list(range(len(pairs)))
        random.Random(seed * 1000 + epoch).shuffle(order)
        while order:
            cur: list[int] = []
            seen: set[str] = set()
            pos: set[str] = set()
            rest = []
            for i in order:
                q, p = pairs[i]["query"].lower(), pairs[i]["passage"]
                n = negatives[i] if negatives else None
                if len(cur) < batch and q not in seen and p not in seen and (n is None or n not in pos):
                    cur.append(i)
                    seen.update((q, p))
                    pos.add(p)
                    if n is not None:
                        seen.add(n)
                else:
                    rest.append(i)
            out.append(cur)
            order = rest
    return [b for b in out if len(b) > 1]  # one pair has no in-batch negative to learn from


def evaluate(model: Any, pairs: Sequence[dict[str, str]], batch: int = 32) -> dict[str, float]:
    """R@1, R@10 and MRR of ``model`` on held-out pairs: each query against every held-out passage (dense)."""
    from core.rag.evalset import dense_top, metrics
    from core.rag.represent import query_text

    passages = sorted({p["passage"] for p in pairs})
    where = {t: i for i, t in enumerate(passages)}
    enc = {"batch_size": batch, "normalize_embeddings": True, "convert_to_numpy": True, "show_progress_bar": False}
    qv = model.encode([query_text(p["query"]) for p in pairs], **enc)
    cv = model.encode(passages, **enc)
    ranked = dense_top(qv, cv, 100)
    r1, r10, mrr = metrics([[i for i, _ in r] for r in ranked], [where[p["passage"]] for p in pairs])
    return {"r1": round(r1, 4), "r10": round(r10, 4), "mrr": round(mrr, 4), "queries": len(pairs),
            "passages": len(passages)}


def interpolate(tuned: dict[str, Any], base: dict[str, Any], alpha: float) -> None:
    """Move ``tuned``'s floating-point tensors (a state dict, in place) to ``base + alpha * (tuned - base)``.

    Weight-space ensembling of the fine-tuned and the base model ("WiSE-FT", Wortsman et al., *Robust
    fine-tuning of zero-shot models*, CVPR 2022).  Why: a team's few hundred pairs pull the model towards
    the files they come from; halfway back keeps most of the gain on those and the base's reach on the
    rest.  Measured on the stdlib benchmark (docs/finetune.md): at lr 1e-4, alpha 0.5 against 1 moved the
    held-out dense R@10 gain by +0.000 to +0.005 (mean +0.002) over four training seeds, never down (in
    exploration runs on another evaluation sample once by -0.002); at the shipped 1.5e-4 it keeps a run from
    overshooting (seed 1: +0.016 not interpolated, +0.034 at 0.5).  Integer buffers (position ids) stay.
    """
    for name, t in tuned.items():
        if t.is_floating_point():
            t.mul_(alpha).add_(base[name].to(t.dtype), alpha=1.0 - alpha)


def load_model(folder: str | Path, threads: int) -> Any:
    from core.rag.embedder import offline_env

    offline_env()
    import torch

    torch.set_num_threads(max(1, threads))
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), device="cpu", local_files_only=True)


def _save_state(work: Path, data: dict[str, Any]) -> None:
    import torch

    fd, tmp = tempfile.mkstemp(prefix=".state.", dir=work)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, work / STATE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(work)


def _save_model(model: Any, work: Path) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=".model-", dir=work))
    try:
        model.save(str(tmp))
        for f in tmp.rglob("*"):
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        final = work / MODEL
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
        fsync_dir(work)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(work: Path, *, threads: int = 1, emit: Callable[[dict[str, Any]], None] = lambda _e: None) -> dict[str, Any]:
    """Train (resuming from ``state.pt`` when present), save the model, evaluate both; returns ``result.json``."""
    if (work / RESULT).is_file():  # finished before a crash took the answer: nothing to redo
        return dict(json.loads((work / RESULT).read_text("utf-8")))
    params = {**DEFAULTS, **json.loads((work / PARAMS).read_text("utf-8"))}
    data = json.loads((work / PAIRS).read_text("utf-8"))
    train, held = data["train"], data["held_out"]
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from core.rag.represent import query_text

    # dropout draws from torch's generator: seeded, and kept in each checkpoint, so a run (resumed or not)
    # is the same run again for the same pairs, parameters and threads
    torch.manual_seed(int(params["seed"]))
    model = load_model(params["base"], threads)
    if not (work / BASE).is_file():
        model.eval()
        write_json(work / BASE, evaluate(model, held))
    base = json.loads((work / BASE).read_text("utf-8"))
    negs = same_file_negatives(train, int(params["seed"])) if params.get("negatives") == "same_file" else None
    plan = batches(train, int(params["batch"]), int(params["epochs"]), int(params["seed"]), negs)
    directions = tuple(params["directions"])
    # partition_mode / hardness_*: the library's options, for benchmark runs (docs/finetune.md "Measured")
    pmode: Any = params.get("partition_mode") or ("per_direction" if len(directions) > 1 else "joint")
    loss_fn = MultipleNegativesRankingLoss(model, scale=float(params["scale"]), directions=directions,
                                           partition_mode=pmode, hardness_mode=params.get("hardness_mode"),
                                           hardness_strength=float(params.get("hardness_strength", 0.0)))
    opt = torch.optim.AdamW(model.parameters(), lr=float(params["lr"]))
    warm = max(1, int(len(plan) * float(params["warmup"])))

    def factor(step: int) -> float:
        return (step + 1) / warm if step < warm else max(0.0, (len(plan) - step) / max(1, len(plan) - warm))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    step, spent = 0, 0.0
    if (work / STATE).is_file():
        st = torch.load(work / STATE, map_location="cpu", weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        step, spent = int(st["step"]), float(st["seconds"])
        if "rng" in st:  # checkpoints written before the generator was kept resume without it
            torch.set_rng_state(st["rng"])
        emit({"event": "resumed", "step": step, "seconds": round(spent, 1)})
    budget = float(params["budget_s"])
    every_s, every_steps = float(params["checkpoint_s"]), int(params["checkpoint_steps"])
    model.train()
    t0, last_ck, stopped = time.monotonic() - spent, time.monotonic(), "done"
    emit({"event": "progress", "done": step, "total": len(plan)})
    while step < len(plan):
        if time.monotonic() - t0 >= budget:
            stopped = "budget"
            break
        idx = plan[step]
        # queries as search embeds them (core/rag/represent.query_text), passages already as the index embeds them
        feats = [model.preprocess([query_text(train[i]["query"]) for i in idx]),
                 model.preprocess([train[i]["passage"] for i in idx])]
        if negs is not None:
            feats.append(model.preprocess([negs[i] for i in idx]))
        feats = [{k: v.to(model.device) if hasattr(v, "to") else v for k, v in f.items()} for f in feats]
        loss = loss_fn(feats, None)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        emit({"event": "progress", "done": step, "total": len(plan), "loss": round(float(loss.item()), 4)})
        if step < len(plan) and ((every_steps and step % every_steps == 0) or time.monotonic() - last_ck >= every_s):
            _save_state(work, {"model": model.state_dict(), "optimizer": opt.state_dict(),
                               "scheduler": sched.state_dict(), "step": step, "seconds": time.monotonic() - t0,
                               "rng": torch.get_rng_state()})
            last_ck = time.monotonic()
            emit({"event": "checkpoint", "step": step})
    seconds = time.monotonic() - t0
    model.eval()
    alpha = float(params["interpolate"])
    if alpha != 1.0:
        with torch.no_grad():
            interpolate(model.state_dict(), load_model(params["base"], threads).state_dict(), alpha)
    _save_model(model, work)
    tuned = evaluate(model, held)
    result = {"base": base, "tuned": tuned, "steps": step, "total_steps": len(plan), "seconds": round(seconds, 1),
              "stopped": stopped, "train_pairs": len(train), "held_out_pairs": len(held), "interpolate": alpha}
    write_json(work / RESULT, result)
    (work / STATE).unlink(missing_ok=True)  # the model is saved; the 3x-sized optimizer state is not needed
    return result


def run_fake(work: Path, gain: float, *, emit: Callable[[dict[str, Any]], None] = lambda _e: None,
             step_s: float = 0.3) -> dict[str, Any]:
    """Test hook (``MUSUBI_TEST_TUNE_GAIN``, docs/finetune.md): no torch.  The base model is measured with the
    FakeEmbedder the test worker runs; the "tuned" one reports those measures plus ``gain``; a small model
    folder is written so the rest of the pipeline (ids, activation, re-embedding) runs for real."""
    if (work / RESULT).is_file():
        return dict(json.loads((work / RESULT).read_text("utf-8")))
    from core.rag.embedder import FakeEmbedder

    data = json.loads((work / PAIRS).read_text("utf-8"))
    fake = FakeEmbedder(64)

    class _Model:
        def encode(self, texts: Sequence[str], **_kw: Any) -> Any:
            return fake.encode(texts)

    base = evaluate(_Model(), data["held_out"])
    write_json(work / BASE, base)
    total = 4
    step = int(json.loads((work / STATE).read_text("utf-8"))["step"]) if (work / STATE).is_file() else 0
    if step:
        emit({"event": "resumed", "step": step, "seconds": 0})
    while step < total:
        time.sleep(step_s)
        step += 1
        emit({"event": "progress", "done": step, "total": total, "loss": 1.0 / step})
        if step < total:
            write_json(work / STATE, {"step": step})
            emit({"event": "checkpoint", "step": step})
    tmp = Path(tempfile.mkdtemp(prefix=".model-", dir=work))
    (tmp / "modules.json").write_text("[]")
    (tmp / "model.safetensors").write_bytes(hashlib.sha256((work / PAIRS).read_bytes()).digest() + str(work).encode())
    final = work / MODEL
    if final.exists():
        shutil.rmtree(final)
    os.rename(tmp, final)
    tuned = {**base, **{k: round(min(1.0, max(0.0, base[k] + gain)), 4) for k in ("r1", "r10", "mrr")}}
    result = {"base": base, "tuned": tuned, "steps": total, "total_steps": total, "seconds": total * step_s,
              "stopped": "done", "train_pairs": len(data["train"]), "held_out_pairs": len(data["held_out"])}
    write_json(work / RESULT, result)
    (work / STATE).unlink(missing_ok=True)
    return result


def _watch_parent(ppid: int) -> None:
    import threading

    def watch() -> None:
        while os.getppid() == ppid:
            time.sleep(1.0)
        os._exit(3)  # the engine is gone (kill -9): the resumed job starts a new trainer from state.pt

    threading.Thread(target=watch, name="watch-engine", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.tune.train", description="Train a tuned embedder in WORK.")
    p.add_argument("work", type=Path)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: half the CPUs, as the worker)")
    p.add_argument("--nice", type=int, default=0)
    p.add_argument("--fake", type=float, default=None, metavar="GAIN", help="tests: no model (run_fake)")
    args = p.parse_args(argv)
    _watch_parent(os.getppid())
    if args.nice:
        os.nice(args.nice)
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # a library's print must not corrupt the event lines
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s trainer[%(process)d] %(levelname)s %(message)s")
    from core.rag.embedder import default_threads

    def emit(event: dict[str, Any]) -> None:
        out.write(json.dumps(event) + "\n")

    try:
        if args.fake is not None:
            result = run_fake(args.work, args.fake, emit=emit)
        else:
            result = run(args.work, threads=args.threads or default_threads(), emit=emit)
    except Exception as exc:  # noqa: BLE001 - the job shows the reason; the traceback is in the log
        log.exception("training failed")
        emit({"event": "error", "message": f"{type(exc).__name__}: {exc}"})
        return 1
    emit({"event": "done", "result": result})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
