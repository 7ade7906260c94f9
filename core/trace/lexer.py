"""Find artefact IDs in source files and say where each sits: comment, docstring, string, test name.

A link counts when the ID is in a comment, a docstring, a test name, or any
string of a test file (test titles and markers are strings: ``it("REQ-AUTH-001 ...")``,
``@pytest.mark.req("REQ-AUTH-001")``).  An ID in a plain string of production
code is data (an error code, a log message), not a trace link.  Files of a
type we cannot lex are read as plain text: every ID counts.

The lexer is one regular expression per language family that matches comments
and strings only, so the C regex engine skips code; it runs only on files that
contain an ID at all.
"""

from __future__ import annotations

import re

from core.trace import forms as K
from core.trace.ids import IdPatterns

# What the scanner keeps per hit: (ID, 1-based line, context).
Hit = tuple[str, int, str]

COUNTED = frozenset({"comment", "docstring", "text", "test-name", "test-string"})

# Every alternative starts with a literal character, so the regex engine skips
# code in C at full speed (a leading group or lookahead would defeat that), and
# loops are "unrolled" ([^"\\]*(?:\\.[^"\\]*)*) instead of one alternation per
# character: together about 3x faster on real code.  Group names carry the
# context; a "_2" suffix only keeps them unique.
_DQ = r'"(?P<string>[^"\\\n]*(?:\\.[^"\\\n]*)*)"'
_SQ = r"'(?P<string_2>[^'\\\n]*(?:\\.[^'\\\n]*)*)'"
_BACKTICK = r"`(?P<string_3>[^`\\]*(?:\\[\s\S][^`\\]*)*)`"
_TDQ = r'"""(?P<docstring>[^"\\]*(?:(?:\\[\s\S]|"(?!""))[^"\\]*)*)(?:"""|\Z)'
_TSQ = r"'''(?P<docstring_2>[^'\\]*(?:(?:\\[\s\S]|'(?!''))[^'\\]*)*)(?:'''|\Z)"
# TOML / INI multi-line strings are data, not comments (a '#' inside them is text).
_TDQ_DATA = r'"""(?P<string_4>[^"\\]*(?:(?:\\[\s\S]|"(?!""))[^"\\]*)*)(?:"""|\Z)'
_TSQ_DATA = r"'''(?P<string_5>[^']*(?:'(?!'')[^']*)*)(?:'''|\Z)"
_BLOCK = r"/\*(?P<comment_2>[^*]*(?:\*(?!/)[^*]*)*)(?:\*/|\Z)"


def _alt(*parts: str) -> re.Pattern[bytes]:
    # Lexing runs on the raw bytes: no decoding, and any encoding of the file will do.
    return re.compile("|".join(parts).encode())


_FAMILIES: dict[str, re.Pattern[bytes]] = {
    "python": _alt(_TDQ, _TSQ, r"#(?P<comment>[^\n]*)", _DQ, _SQ),
    "hash": _alt(r"#(?P<comment>[^\n]*)", _DQ, _SQ),
    "toml": _alt(_TDQ_DATA, _TSQ_DATA, r"#(?P<comment>[^\n]*)", _DQ, _SQ),
    "clike": _alt(r"//(?P<comment>[^\n]*)", _BLOCK, _DQ, _SQ, _BACKTICK),
    "dash": _alt(r"--(?P<comment>\[\[[\s\S]*?(?:\]\]|\Z)|[^\n]*)", _BLOCK, _DQ, _SQ),
    "xml": _alt(r"<!--(?P<comment>[\s\S]*?)(?:-->|\Z)"),
    "semi": _alt(r";(?P<comment>[^\n]*)", _DQ),
    "percent": _alt(r"%(?P<comment>[^\n]*)", _DQ),
}

_EXT_FAMILY: dict[str, str] = {}
for _fam, _exts in {
    "python": "py pyi pyx",
    "toml": "toml ini cfg",
    "hash": "sh bash zsh fish rb pl pm r yaml yml conf mk cmake tf hcl ex exs nim jl ps1 coffee cr",
    "clike": "c h cc cpp cxx hh hpp hxx m mm java kt kts scala groovy gradle js jsx mjs cjs ts tsx go rs cs "
    "fs swift dart php css scss sass less proto zig v sol vue svelte",
    "dash": "sql lua hs elm ada adb ads",
    "xml": "html htm xml xhtml svg xsl",
    "semi": "lisp clj cljs cljc el scm rkt asm s",
    "percent": "tex sty erl hrl",
}.items():
    for _e in _exts.split():
        _EXT_FAMILY["." + _e] = _fam

_NAME_FAMILY = {"Makefile": "hash", "Dockerfile": "hash", "Rakefile": "hash", "Gemfile": "hash", "CMakeLists.txt": "hash"}

_IDENT = re.compile(rb"[A-Za-z_][A-Za-z0-9_]*")


def family_of(rel: str) -> str | None:
    """The lexer family of a path, or None for plain text."""
    name = rel.rsplit("/", 1)[-1]
    fam = _NAME_FAMILY.get(name)
    if fam:
        return fam
    dot = name.rfind(".")
    return _EXT_FAMILY.get(name[dot:].lower()) if dot > 0 else None


def contexts(data: bytes, family: str, positions: list[int]) -> list[str]:
    """The context of each offset in ``positions`` (ascending).

    Lexing must run from the top (a string may hide a comment marker), but it
    stops at the last offset asked about.
    """
    out = []
    tokens = _FAMILIES[family].finditer(data)
    cur = next(tokens, None)
    for p in positions:
        while cur is not None and cur.end() <= p:
            cur = next(tokens, None)
        if cur is not None and cur.start() <= p:
            out.append((cur.lastgroup or "string").split("_", 1)[0])
        else:
            out.append("code")
    return out


def scan_text(text: str, rel: str, is_test: bool, ids: IdPatterns, cites: str = "", data_strings: bool = False) -> list[Hit]:
    """:func:`scan_bytes` of a string (tests, callers that hold text)."""
    return scan_bytes(text.encode("utf-8", "surrogateescape"), rel, is_test, ids, cites, data_strings)


def scan_bytes(
    data: bytes, rel: str, is_test: bool, ids: IdPatterns, cites: str = "", data_strings: bool = False
) -> list[Hit]:
    """Every ID in a file with its line and context; uncounted contexts are kept as 'string'/'code'.

    ``cites`` asks for bare local citations too: ``k`` Kiro numbers ("Requirements 2.3"),
    ``s`` Spec Kit IDs ("FR-001"); they come as ``@<feature named in the file>:<local>``.
    ``data_strings``: the file's string literals are data (test fixtures), never links.
    Lines carrying the ignore marker (``musubi-trace: ignore``) give nothing.
    """
    found: list[tuple[int, str, str]] = []
    matches = ids.find_bytes(data)
    if cites:
        local = _local_citations(data, cites, ids)
        if local:
            matches = sorted(matches + local)
    if matches:
        family = family_of(rel)
        if family is None:
            found.extend((p, tok, "text") for p, tok in matches)
        else:
            for (p, tok), ctx in zip(matches, contexts(data, family, [p for p, _t in matches]), strict=True):
                if ctx == "string" and is_test and not data_strings:
                    ctx = "test-string"
                found.append((p, tok, ctx))
    if is_test:
        found.extend(_test_names(data, ids))
    if not found:
        return []
    found.sort()
    ignored = _ignored_lines(data)
    out: list[Hit] = []
    seen: set[tuple[str, int]] = set()
    pos, line = 0, 1
    for p, tok, ctx in found:
        line += data.count(b"\n", pos, p)  # counting LF only: CRLF files number lines the same
        pos = p
        if (tok, line) in seen or line in ignored:
            continue
        seen.add((tok, line))
        out.append((tok, line, ctx))
    return out


_MARK = K.IGNORE_MARK.encode()


def _ignored_lines(data: bytes) -> set[int]:
    out: set[int] = set()
    p = data.find(_MARK)
    while p >= 0:
        out.add(data.count(b"\n", 0, p) + 1)
        p = data.find(_MARK, p + 1)
    return out


def _local_citations(data: bytes, cites: str, ids: IdPatterns) -> list[tuple[int, str]]:
    """Bare Kiro numbers and Spec Kit IDs as ``@<feature hint>:<local>`` (the matrix resolves the feature)."""
    raw: list[tuple[int, str]] = []
    if "k" in cites and (b"Req" in data or b"REQ" in data):
        for m in K.KIRO_CITE_BYTES.finditer(data):
            raw += [(m.start(), n) for n in K.expand_numbers(m.group(1).decode("utf-8", "replace"))]
    if "s" in cites and (b"FR-" in data or b"SC-" in data):
        for m in K.SPECKIT_LOCAL_BYTES.finditer(data):
            tok = m.group(1).decode("ascii")
            if not ids.kind_of(tok):
                raw.append((m.start(), tok))
    if not raw:
        return []
    marks = [(m.start(), m.group(1).decode("ascii", "replace")) for m in K.FEATURE_MARK_BYTES.finditer(data)] \
        if b"Feature" in data else []
    out = []
    for p, local in raw:
        hint = ""
        for mp, name in marks:  # the closest "Feature: name" before the citation scopes it
            if mp > p:
                break
            hint = name
        out.append((p, f"@{hint}:{local}"))
    return out


def _test_names(data: bytes, ids: IdPatterns) -> list[tuple[int, str, str]]:
    """IDs spelled as identifiers inside test-named identifiers: ``test_req_auth_001_login``."""
    if not ids.may_have_ident(data):
        return []
    out = []
    for m in _IDENT.finditer(data):
        word = m.group(0)
        if b"test" not in word.lower() or b"_" not in word and not any(48 <= c <= 57 for c in word):
            continue
        for im in ids.ident_whole_bytes.finditer(word):
            canon = ids.canonical(im.group(0).decode("ascii", "replace"))
            if canon:
                out.append((m.start() + im.start(), canon, "test-name"))
    return out
