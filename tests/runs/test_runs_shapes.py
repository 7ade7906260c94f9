"""Real answers and events of the runs routes have exactly the shapes of core/api/runs.py."""

from __future__ import annotations

import json
import threading
from typing import Any

from core.api import runs as rq
from core.engine.server import all_routes
from tests.engine.helpers import Home, poll
from tests.engine.test_api_models import _exactly
from tests.runs.helpers import script, start, wait

EVENT_SHAPES = {"run.state": rq.RunEvent, "run.step": rq.StepEvent, "run.output": rq.OutputEvent,
                "run.call": rq.CallEvent, "run.gate": rq.GateEvent, "run.note": rq.NoteEvent}


def _events(h: Home, tenant: str, into: list[dict[str, Any]], stop: threading.Event,
            connected: threading.Event) -> None:
    import http.client
    import socket

    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(str(h.paths.socket))

    c = Conn("localhost", timeout=30)
    c.request("GET", "/v1/events?types=" + ",".join(rq.EVENT_TYPES), headers={"X-Musubi-Tenant": tenant,
                                                                               "X-Musubi-Cwd": "/"})
    resp = c.getresponse()
    while not stop.is_set():
        raw = resp.readline()
        if not raw:
            return
        if raw.startswith(b": connected"):  # subscribed: every event from now on reaches us
            connected.set()
        if raw.startswith(b"data: "):
            into.append(json.loads(raw[6:]))


def test_every_runs_answer_and_event_has_its_declared_shape(rhome: Home) -> None:
    routes = {(r.method, r.path): r.response for r in all_routes() if r.path.startswith("/v1/runs")}
    t = rhome.new_tenant("shape")
    got: list[dict[str, Any]] = []
    stop, connected = threading.Event(), threading.Event()
    th = threading.Thread(target=_events, args=(rhome, t, got, stop, connected), daemon=True)
    th.start()
    assert connected.wait(30), "the event stream never said it was connected"
    script(rhome, replies={"2": ["x" * 200]})
    run = start(rhome, t, "gated")
    _exactly(run, routes[("POST", "/v1/runs")])
    rid = run["id"]
    shown = wait(rhome, t, rid, "waiting")
    _exactly(shown, routes[("GET", "/v1/runs/{id}")])
    _exactly(rhome.client(t).get("/v1/runs"), routes[("GET", "/v1/runs")])
    _exactly(rhome.client(t).get(f"/v1/runs/{rid}/logs"), routes[("GET", "/v1/runs/{id}/logs")])
    status, decided = rhome.raw("POST", f"/v1/runs/{rid}/request_changes", {"comment": "smaller"}, tenant=t)
    assert status == 200, decided
    _exactly(decided, routes[("POST", "/v1/runs/{id}/request_changes")])
    failed = wait(rhome, t, rid, "failed", "done")
    assert failed["stop_code"] == "rejected"  # the test pattern treats anything but approve as a rejection
    status, cancelled = rhome.raw("POST", f"/v1/runs/{start(rhome, t, 'gated')['id']}/cancel", tenant=t)
    assert status == 200, cancelled
    _exactly(cancelled, routes[("POST", "/v1/runs/{id}/cancel")])
    # The cancelled run's last state event is the last thing published: once it is here, so is the rest.
    poll(lambda: any(e["type"] == "run.state" and e["run"]["id"] == cancelled["id"]
                     and e["run"]["state"] == "cancelled" for e in list(got)), timeout=30)
    stop.set()
    # runs gaps: a step's output (recorded here) and the retry of a failed step.
    _exactly(rhome.client(t).get(f"/v1/runs/{rid}/output", {"step": "1"}), routes[("GET", "/v1/runs/{id}/output")])
    script(rhome, fail={"1": "bad_request"})
    broken = start(rhome, t, "two")["id"]
    wait(rhome, t, broken, "failed")
    script(rhome)
    status, retried = rhome.raw("POST", f"/v1/runs/{broken}/retry", {"step": "1"}, tenant=t)
    assert status == 200, retried
    _exactly(retried, routes[("POST", "/v1/runs/{id}/retry")])
    kinds = {e["type"] for e in got}
    assert {"run.state", "run.step", "run.output", "run.call", "run.gate"} <= kinds, kinds
    for e in got:
        if e["type"] in EVENT_SHAPES:
            _exactly(e, EVENT_SHAPES[e["type"]])
    outputs = [e for e in got if e["type"] == "run.output" and e["run"] == rid and e["step"] == "2"]
    assert "".join(o["text"] for o in outputs) == "x" * 200  # coalesced, nothing lost
    assert len(outputs) < 200 // 16  # fewer events than deltas
