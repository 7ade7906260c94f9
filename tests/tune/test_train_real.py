"""The real trainer (torch, all-MiniLM-L6-v2) on a few pairs: killed with -9 after a checkpoint, then resumed.

Slow-ish (two model loads and a few CPU training steps), so it is the one test that trains for real;
the engine tests use the MUSUBI_TEST_TUNE_GAIN hook.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from core.rag.model import resolve_model
from core.tune import train as T

ROOT = Path(__file__).resolve().parents[2]


def _pairs(n: int, prefix: str) -> list[dict[str, str]]:
    words = ["parse", "render", "merge", "sort", "hash", "encode", "decode", "split", "join", "count", "load", "save"]
    out = []
    for i in range(n):
        w = words[i % len(words)]
        out.append({"kind": "docstring", "query": f"{w} the {prefix} record number {i}",
                    "passage": f"{w}_{prefix}_{i}\ndef {w}_{prefix}_{i}(record):\n    return {w}(record, {i})",
                    "path": f"{prefix}/m{i}.py", "symbol": f"{w}_{prefix}_{i}", "source": ""})
    return out


def _start(work: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "core.tune.train", str(work), "--threads", "1"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)


def test_kill_9_during_training_then_resume(tmp_path: Path) -> None:
    work = tmp_path / "v1"
    work.mkdir()
    (work / T.PAIRS).write_text(json.dumps({"train": _pairs(24, "train"), "held_out": _pairs(8, "held")}))
    (work / T.PARAMS).write_text(json.dumps({"base": str(resolve_model(None).path), "batch": 4, "epochs": 1,
                                             "checkpoint_steps": 2, "budget_s": 3600}))
    proc = _start(work)
    assert proc.stdout is not None
    events = []
    for line in proc.stdout:
        events.append(json.loads(line))
        if events[-1]["event"] == "checkpoint":
            proc.send_signal(signal.SIGKILL)  # mid-training, right after a checkpoint reached the disk
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert (work / T.STATE).is_file() and not (work / T.RESULT).exists() and not (work / T.MODEL).exists()
    at = events[-1]["step"]
    assert not list(work.glob(".state.*"))  # no torn temporary checkpoint left behind

    proc = _start(work)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out
    evs = [json.loads(x) for x in out.splitlines()]
    resumed = [e for e in evs if e["event"] == "resumed"]
    assert resumed and resumed[0]["step"] >= at  # from the last checkpoint, not from zero
    steps = [e["done"] for e in evs if e["event"] == "progress" and "loss" in e]
    result = evs[-1]["result"]
    assert steps[0] == resumed[0]["step"] + 1 and result["steps"] == result["total_steps"] == 6  # 24 pairs / 4
    assert result["stopped"] == "done" and result["interpolate"] == T.DEFAULTS["interpolate"] == 0.5
    assert set(result["base"]) >= {"r1", "r10", "mrr"} and set(result["tuned"]) >= {"r1", "r10", "mrr"}
    assert (work / T.MODEL / "modules.json").is_file()
    assert not (work / T.STATE).exists()  # the optimizer state goes once the model is saved
    assert resolve_model(work / T.MODEL).model_id.startswith("model@")


def test_batches_keep_duplicates_apart_and_are_deterministic() -> None:
    pairs = [{"query": "same query", "passage": f"p{i}"} for i in range(4)] + \
        [{"query": f"q{i}", "passage": f"x{i}"} for i in range(8)]
    plan = T.batches(pairs, 4, 2, seed=0)
    assert plan == T.batches(pairs, 4, 2, seed=0)
    for b in plan:
        assert len({pairs[i]["query"] for i in b}) == len(b)  # one "same query" per batch at most
    seen = [i for b in plan for i in b]
    assert all(seen.count(i) == 2 for i in range(4, 12))  # every pair once per epoch ...
    assert all(seen.count(i) <= 2 for i in range(4))  # ... but a duplicate left alone in a batch has no negative
    assert all(len(b) > 1 for b in plan)


def test_same_file_negatives_are_never_a_positive_of_the_same_batch() -> None:
    """The benchmark's hard-negative option (``negatives = "same_file"``): another pair's passage of the same
    file, and a batch never holds a pair whose positive is another pair's negative (it would be pushed away)."""
    pairs = [{"query": f"q{i}", "passage": f"p{i}", "path": f"f{i // 3}.py"} for i in range(12)]
    negs = T.same_file_negatives(pairs, seed=0)
    assert negs == T.same_file_negatives(pairs, seed=0)
    for i, n in enumerate(negs):
        assert n != pairs[i]["passage"] and n in {pairs[j]["passage"] for j in range(12) if j // 3 == i // 3}
    plan = T.batches(pairs, 6, 1, seed=0, negatives=negs)
    assert sorted(i for b in plan for i in b) == list(range(12))
    for b in plan:
        assert not {negs[i] for i in b} & {pairs[i]["passage"] for i in b}


def test_interpolate_moves_float_weights_between_base_and_tuned_and_keeps_integer_buffers() -> None:
    import torch

    base = {"w": torch.tensor([0.0, 2.0, -4.0]), "ids": torch.tensor([0, 1, 2])}
    tuned = {"w": torch.tensor([1.0, 4.0, 4.0]), "ids": torch.tensor([0, 1, 2])}
    T.interpolate(tuned, base, 0.5)
    assert tuned["w"].tolist() == [0.5, 3.0, 0.0] and tuned["ids"].tolist() == [0, 1, 2]
    T.interpolate(tuned, base, 0.0)
    assert tuned["w"].tolist() == base["w"].tolist()
