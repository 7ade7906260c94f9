"""An index job racing an embedder activation (docs/finetune.md, "Versions, files, activation, rollback").

The activation re-embeds every chunk into the new model's folder while index jobs may run and write the
folder serving then; the last catch-up and the switch run under the index jobs' lock.  Whichever moment
an index job starts in, after the switch the serving folder holds exactly the chunk table's chunks.
``MUSUBI_TEST_TUNE_PAUSE_AT`` stops the activation at a point until the test deletes the gate file, so
the index job starts exactly there (no sleeps).  Real engine, fake embedder, ``MUSUBI_TEST_TUNE_GAIN``.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from tests.cli.helpers import Cli
from tests.engine.helpers import poll

from . import test_tune_cleanup
from .test_tune_cleanup import _code, _killed, _on_disk

PAUSE_AT = "MUSUBI_TEST_TUNE_PAUSE_AT"
WORD = "zanzibarquokka"  # in the code the index job adds: no other chunk holds it
cli = test_tune_cleanup.cli  # the fixture: the engine (fake embedder, a tuning gain), a project indexed


def _restart(c: Cli, monkeypatch: pytest.MonkeyPatch, pause: str | None, **env: str) -> None:
    c.stop()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if pause is None:
        monkeypatch.delenv(PAUSE_AT, raising=False)
    else:
        monkeypatch.setenv(PAUSE_AT, pause)
    c.ok("engine", "start")


def _paused(c: Cli, point: str) -> Path:
    gate = Path(c.home) / f"tune-paused-{point}"
    assert poll(gate.exists, timeout=120, interval=0.05), f"the activation never reached {point}"
    return gate


def _edit(repo: Path, gone: str = "lexstate.py") -> None:
    """Change one file (its chunks get new ids, the old ones are deleted), add one, delete ``gone``."""
    changed = repo / "fusion.py"
    changed.write_text(changed.read_text(encoding="utf-8") + f"\n\ndef {WORD}_rank(x):\n    return x\n",
                       encoding="utf-8")
    (repo / f"{WORD}.py").write_text(f'def {WORD}_parse(text):\n    """Parse a {WORD} record."""\n'
                                     "    return text.split()\n", encoding="utf-8")
    (repo / gone).unlink()


def _wait(c: Cli, jid: str) -> dict[str, object]:
    done = poll(lambda: (j := c.js("jobs", "show", jid))["state"] in ("done", "failed", "cancelled") and j,
                timeout=180, interval=0.1)
    assert done["state"] == "done", done
    return dict(done)


def _check_serving_folder(c: Cli, folder: str, gone: str = "lexstate.py") -> None:
    """With the engine stopped: ``folder`` serves, and holds exactly the chunk table's ids, each embedded with
    the model the index names (the new file's chunks among them)."""
    import duckdb

    from core.rag.vectors import MANIFEST, VectorIndex

    c.stop()
    db = duckdb.connect(str(Path(c.home) / "musubi.duckdb"), read_only=True)
    try:
        rows = db.execute("select chunk_id, path, dense from code_chunks where project = 'sc'").fetchall()
        (model_id, dense_chunks, chunks), = db.execute(
            "select model_id, dense_chunks, chunks from code_indexes where project = 'sc'").fetchall()
    finally:
        db.close()
    vec = _code(c) / folder
    man = json.loads((vec / MANIFEST).read_text(encoding="utf-8"))
    assert man["model_id"] == model_id == "fake-model@dim256"  # the tuned model serves and built the folder
    held = set(VectorIndex.open(vec, model_id=model_id, dim=int(man["dim"])).ids().tolist())
    ids = {r[0] for r in rows}
    assert held == ids, (f"missing from {folder}: {sorted(ids - held)[:10]}, "
                         f"deleted chunks still there: {sorted(held - ids)[:10]}")
    assert all(r[2] for r in rows) and dense_chunks == chunks == len(rows)
    paths = {r[1] for r in rows}
    assert f"{WORD}.py" in paths and gone not in paths
    c.ok("engine", "start")


def _found(c: Cli, repo: Path) -> None:
    hits = c.js("search", f"{WORD} parse record", cwd=str(repo))
    assert hits["dense_coverage"] == 1.0 and hits["complete"], hits
    assert hits["results"][0]["path"] == f"{WORD}.py", hits["results"][:3]


def _index_job_during_the_switch(c: Cli, repo: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, Path]:
    """A tuning whose activation is paused inside the lock, before its switch, and an index job started
    there (running, held at the lock: it has committed nothing, chosen no folder): (tuning, index job, gate)."""
    _restart(c, monkeypatch, "switching")
    jid = c.js("tune", "embedder", "--detach", cwd=str(repo))["id"]
    gate = _paused(c, "switching")
    _edit(repo)
    ijid = c.js("index", "--detach", cwd=str(repo))["id"]
    assert poll(lambda: c.js("jobs", "show", ijid)["state"] == "running", timeout=60, interval=0.05)
    # Held at the lock, it says what it waits for (not a bare "running"), in the API and in `jobs show`.
    assert poll(lambda: "message" in c.js("jobs", "show", ijid)["progress"], timeout=60, interval=0.05)
    waiting = c.js("jobs", "show", ijid)
    assert waiting["checkpoint"] is None
    assert waiting["progress"]["message"].startswith("waiting for the embedder re-embed to finish")
    assert "waiting for the embedder re-embed to finish" in c.ok("jobs", "show", ijid).out
    return jid, ijid, gate


def test_index_job_between_the_pass_and_the_switch_is_caught_up(cli: tuple[Cli, Path],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The index job runs to its end on the old folder after the activation's pass and before its switch:
    the activation's last catch-up embeds its new chunks and drops its deleted ones before switching."""
    c, repo = cli
    _restart(c, monkeypatch, "reembedded")
    jid = c.js("tune", "embedder", "--detach", cwd=str(repo))["id"]
    gate = _paused(c, "reembedded")
    _edit(repo)
    r = c.js("index", cwd=str(repo))["result"]  # runs to its end: the lock is free
    assert r["changed"] == 2 and r["deleted"] == 1 and r["embedded"] > 0
    assert c.js("tune", "list", cwd=str(repo))["serving"] == 0  # the old folder served the index job
    gate.unlink()
    assert _wait(c, jid)["result"]["state"] == "active"  # type: ignore[index]
    assert poll(lambda: _on_disk(c) == ["vectors-t1"], timeout=60, interval=0.1), _on_disk(c)
    _check_serving_folder(c, "vectors-t1")
    _found(c, repo)
    assert c.js("index", cwd=str(repo))["result"]["embedded"] == 0  # nothing left for a later run


def test_index_job_during_the_pass_deletes_chunks_it_embedded(cli: tuple[Cli, Path],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The index job runs to its end after the pass's first batch: chunks it deleted may have been embedded
    into the new folder already, the ones it added come after the ids the pass read; the catch-up drops
    the first and embeds the second."""
    c, repo = cli
    _restart(c, monkeypatch, "reembedding", MUSUBI_TEST_INDEX_BATCH="150")
    jid = c.js("tune", "embedder", "--detach", cwd=str(repo))["id"]
    gate = _paused(c, "reembedding")
    assert c.js("jobs", "show", jid)["checkpoint"]["after"] >= 0
    _edit(repo, gone="chunk_core.py")  # the first file in id order: its chunks are in the first batch
    r = c.js("index", cwd=str(repo))["result"]
    assert r["changed"] == 2 and r["deleted"] == 1
    gate.unlink()
    assert _wait(c, jid)["result"]["state"] == "active"  # type: ignore[index]
    _check_serving_folder(c, "vectors-t1", gone="chunk_core.py")
    _found(c, repo)


def test_index_job_started_while_the_switch_is_under_way_waits_for_it(cli: tuple[Cli, Path],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The index job starts after the last catch-up, before the switch's commit: it waits for the switch
    and then writes the new folder."""
    c, repo = cli
    jid, ijid, gate = _index_job_during_the_switch(c, repo, monkeypatch)
    gate.unlink()
    assert _wait(c, jid)["result"]["state"] == "active"  # type: ignore[index]
    done = _wait(c, ijid)
    r = done["result"]
    assert r["changed"] == 2 and r["deleted"] == 1 and r["rebuilt"] is False  # type: ignore[index]
    assert "message" not in done["progress"]  # type: ignore[operator]  # the wait is over: nothing to say
    # The switch removed the old folder (trash deleted in a thread): no index job could still write it.
    assert poll(lambda: _on_disk(c) == ["vectors-t1"], timeout=60, interval=0.1), _on_disk(c)
    _check_serving_folder(c, "vectors-t1")
    _found(c, repo)


def test_kill_9_while_an_index_job_waits_for_the_switch(cli: tuple[Cli, Path],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash with the switch under way and an index job waiting: nothing switched; at the next start both
    jobs resume and the serving folder again holds exactly the chunk table's chunks."""
    c, repo = cli
    jid, ijid, gate = _index_job_during_the_switch(c, repo, monkeypatch)
    os.kill(int(gate.read_text(encoding="utf-8")), signal.SIGKILL)  # the engine, paused inside the lock
    _killed(c)
    gate.unlink()
    monkeypatch.delenv(PAUSE_AT)
    c.ok("engine", "start")
    assert _wait(c, jid)["result"]["state"] == "active"  # type: ignore[index]
    _wait(c, ijid)
    _check_serving_folder(c, "vectors-t1")
    _found(c, repo)
