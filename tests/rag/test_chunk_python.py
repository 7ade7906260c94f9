"""Python chunks by ast: exact chunks on small sources, splitting, fallbacks, and a real stdlib file."""

from __future__ import annotations

import ast
import inspect
import textwrap

from core.rag.chunk_core import SPECIAL_TOKENS, estimate_tokens
from core.rag.chunking import chunk_file
from tests.rag.helpers import check_text, real_tokenizer, rows

SAMPLE = '''"""Module doc."""
import os

X = 1


# helper, attached to f
@decorator(
    a=1)
def f(a,
      b=":"):  # a colon in a default and a comment
    """Doc."""
    def inner():
        return 1
    return inner


class A(Base, metaclass=M):
    """Cls."""
    y = 2

    @property
    def m(self):
        return 1

    async def n(self) -> int:
        return 2

    class Inner:
        def deep(self):
            pass

if os.name == "nt":
    def g():
        pass
'''


def test_exact_chunks_of_a_small_module() -> None:
    chunks = chunk_file("pkg/mod.py", SAMPLE)
    check_text(chunks, SAMPLE)
    assert rows(chunks) == [
        ("module", "", 1, 4, "", 0),
        (
            "function",
            "f",
            7,
            15,
            'def f(a,\n      b=":"):  # a colon in a default and a comment',
            0,
        ),
        ("class", "A", 18, 20, "class A(Base, metaclass=M):", 0),
        ("method", "A.m", 22, 24, "def m(self):", 0),
        ("method", "A.n", 26, 27, "async def n(self) -> int:", 0),
        ("class", "A.Inner", 29, 29, "class Inner:", 0),
        ("method", "A.Inner.deep", 30, 31, "def deep(self):", 0),
        ("module", "", 33, 33, "", 0),
        ("function", "g", 34, 35, "def g():", 0),
    ]
    assert all(c.language == "python" and c.path == "pkg/mod.py" for c in chunks)
    assert chunks[3].text.startswith(
        "    @property"
    )  # decorators are in the text, not the signature


def _long_function(n: int, nested: bool = False) -> str:
    body = "".join(
        f"    value_{i} = compute_something(value_{i - 1}, 'argument number {i}')\n"
        for i in range(1, n)
    )
    inner = "    def helper(x):\n        return x + 1\n\n" if nested else ""
    return f"def long_one(a, b):\n    value_0 = a\n{inner}{body}    return value_0\n"


def test_a_long_body_is_split_into_parts_that_keep_the_signature_and_cover_the_body() -> None:
    src = _long_function(120)
    chunks = chunk_file("long.py", src)
    check_text(chunks, src)
    assert len(chunks) >= 3
    assert [c.part for c in chunks] == list(range(1, len(chunks) + 1))
    assert {(c.kind, c.symbol, c.signature) for c in chunks} == {
        ("function", "long_one", "def long_one(a, b):")
    }
    # contiguous and covering: no blank line inside, so part k+1 starts right after part k
    assert chunks[0].start_line == 1 and chunks[-1].end_line == len(src.splitlines())
    assert all(b.start_line == a.end_line + 1 for a, b in zip(chunks, chunks[1:], strict=False))
    budget = (
        256 - SPECIAL_TOKENS - estimate_tokens("long_one") - estimate_tokens("def long_one(a, b):")
    )
    assert all(estimate_tokens(c.text) <= budget for c in chunks)
    sizes = [c.end_line - c.start_line + 1 for c in chunks]
    assert min(sizes) * 3 >= max(sizes)  # balanced: no full parts and a one-line scrap


def test_a_long_function_sheds_its_nested_functions_as_their_own_chunks() -> None:
    src = _long_function(120, nested=True)
    chunks = chunk_file("long.py", src)
    helper = [c for c in chunks if c.symbol == "long_one.helper"]
    assert rows(helper) == [("function", "long_one.helper", 3, 4, "def helper(x):", 0)]
    assert all(not (c.start_line <= 3 <= c.end_line) for c in chunks if c.symbol == "long_one")


def test_a_short_function_keeps_its_nested_functions_inside() -> None:
    src = "def outer():\n    def inner():\n        return 1\n    return inner\n"
    assert rows(chunk_file("a.py", src)) == [("function", "outer", 1, 4, "def outer():", 0)]


def test_a_huge_signature_is_cut_in_the_signature_field_so_parts_still_fit() -> None:
    params = "".join(f"    parameter_number_{i}: int = {i},\n" for i in range(60))
    src = f"def many(\n{params}) -> None:\n    return None\n"
    chunks = chunk_file("a.py", src)
    sig = chunks[0].signature
    assert sig.startswith("def many(\n    parameter_number_0") and sig.endswith(" ...")
    assert estimate_tokens(sig) <= (256 - SPECIAL_TOKENS) // 4
    assert all(c.signature == sig for c in chunks)
    assert chunks[-1].end_line == len(src.splitlines())


def test_a_syntax_error_falls_back_to_line_windows() -> None:
    src = "def broken(:\n    pass\n\n\nx = 1\n"
    chunks = chunk_file("bad.py", src)
    assert rows(chunks) == [("window", "", 1, 5, "", 0)]


def test_null_bytes_crlf_and_empty_input_never_raise() -> None:
    assert rows(chunk_file("n.py", "x = 1\x00\n")) == [("window", "", 1, 1, "", 0)]
    crlf = chunk_file("c.py", "def f():\r\n    return 1\r\n")
    assert (
        rows(crlf) == [("function", "f", 1, 2, "def f():", 0)]
        and crlf[0].text == "def f():\n    return 1"
    )
    assert chunk_file("e.py", "") == [] and chunk_file("e.py", "\n\n  \n") == []


def test_a_real_stdlib_file_every_def_line_is_covered_and_every_chunk_fits_the_real_window() -> (
    None
):
    import argparse

    src = inspect.getsource(argparse)
    tok = real_tokenizer()
    chunks = chunk_file("argparse.py", src)
    check_text(chunks, src)
    lines = src.split("\n")
    covered: set[int] = set()
    for c in chunks:
        covered.update(range(c.start_line, c.end_line + 1))
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            for i in range(node.lineno, (node.end_lineno or node.lineno) + 1):
                assert (
                    i in covered
                    or not lines[i - 1].strip()
                    or lines[i - 1].strip() in (")", "]", "}")
                ), i
            # the def line lies in a definition's chunk (its own, or its enclosing function's when that fits whole)
            home = [c for c in chunks if c.start_line <= node.lineno <= c.end_line]
            assert len(home) == 1 and home[0].kind in ("function", "method", "class"), (
                node.name,
                home,
            )
            assert home[0].symbol.split(".")[-1] == node.name or home[0].part == 0, (
                node.name,
                home,
            )
    spans = sorted((c.start_line, c.end_line) for c in chunks)
    assert all(b[0] > a[1] for a, b in zip(spans, spans[1:], strict=False)), "chunks overlap"
    real = [len(e.ids) for e in tok.encode_batch([c.text for c in chunks])]
    assert max(real) <= 256, max(real)


def test_sample_is_valid_python() -> None:
    ast.parse(textwrap.dedent(SAMPLE))


def test_with_the_real_tokenizer_as_counter_every_passage_fits_exactly() -> None:
    import argparse

    tok = real_tokenizer()

    def count(text: str) -> int:
        return len(tok.encode(text, add_special_tokens=False).ids)

    chunks = chunk_file("argparse.py", inspect.getsource(argparse), count=count)
    framed = [f"{c.symbol}\n{c.signature}\n{c.text}" for c in chunks]
    assert max(len(e.ids) for e in tok.encode_batch(framed)) <= 256
    # without the estimate's margin the window is used: some chunks come close to it
    assert max(len(e.ids) for e in tok.encode_batch([c.text for c in chunks])) > 200
