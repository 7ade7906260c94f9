"""Helpers shared by the benchmark scripts: temp homes, percentiles, tables."""

from __future__ import annotations

import contextlib
import shutil
import statistics
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def temp_home(prefix: str = "mb") -> Iterator[Path]:
    """A short temporary MUSUBI_HOME (Unix socket paths are limited to 107 bytes)."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


async def roundtrip(reader: Any, writer: Any, request: bytes) -> bytes:
    """Send one HTTP/1.1 request on a keep-alive connection; return its status code (e.g. b"201").

    The engine always answers with Content-Length, so reading the body is exact.
    """
    writer.write(request)
    status_line = await reader.readline()
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        if line[:15].lower() == b"content-length:":
            length = int(line[15:].strip())
    await reader.readexactly(length)
    return bytes(status_line[9:12])


def pct(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(p / 100 * (len(s) - 1))))
    return s[k]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table (benchmarks print, CI logs keep it)."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = "+".join("-" * (w + 2) for w in widths)
    out = [title, line]
    for i, r in enumerate(cells):
        out.append(" | ".join(c.rjust(w) if i else c.ljust(w) for c, w in zip(r, widths, strict=True)))
        if i == 0:
            out.append(line)
    out.append(line)
    return "\n".join(out)


def _fmt(c: object) -> str:
    if isinstance(c, float):
        if c >= 100:
            return f"{c:,.0f}"
        return f"{c:.3g}" if c < 10 else f"{c:.1f}"
    if isinstance(c, int):
        return f"{c:,}"
    return str(c)
