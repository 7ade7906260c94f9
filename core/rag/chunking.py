"""Cutting a file into chunks that respect its structure and fit the embedding model (light).

- Python: by ``ast`` (:mod:`core.rag.chunk_python`); a file with a syntax error falls back to windows.
- JavaScript, TypeScript/TSX, Go, Rust, Java, C, C++, C#, Ruby, PHP: by tree-sitter
  (:mod:`core.rag.chunk_treesitter`, which imports tree_sitter only when called); a grammar
  that cannot be loaded falls back to windows.
- Markdown: by heading (:mod:`core.rag.chunk_markdown`).
- Everything else (YAML, TOML, text, unknown): line windows that break at blank lines.

Every chunk's text is exactly its lines; its estimated word pieces plus those of its symbol
and signature stay within ``max_tokens - 2`` (see :mod:`core.rag.chunk_core`), except a
single line longer than that, which stays whole.
"""

from __future__ import annotations

import posixpath

from core.rag.chunk_core import Source, TokenCounter, estimate_tokens
from core.rag.chunk_markdown import chunk_markdown
from core.rag.chunk_python import chunk_python
from core.rag.chunks import Chunk
from core.rag.textio import decode_bytes, read_text

__all__ = ["chunk_file", "decode_bytes", "estimate_tokens", "language_of", "read_text"]

_BY_SUFFIX = {
    ".py": "python", ".pyi": "python", ".pyw": "python",
    ".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript",
    ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx",
    ".go": "go", ".rs": "rust", ".java": "java",
    ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".hpp": "cpp", ".hh": "cpp",
    ".hxx": "cpp", ".cs": "csharp", ".rb": "ruby", ".php": "php",
    ".md": "markdown", ".markdown": "markdown", ".mdx": "markdown",
    ".yml": "yaml", ".yaml": "yaml", ".toml": "toml", ".json": "json", ".ini": "ini", ".cfg": "ini",
    ".sh": "shell", ".bash": "shell", ".sql": "sql", ".html": "html", ".css": "css",
    ".rst": "rst", ".txt": "text",
}  # fmt: skip
_BY_NAME = {"Dockerfile": "dockerfile", "Makefile": "make", "Gemfile": "ruby", "Rakefile": "ruby"}


def language_of(path: str) -> str:
    """The language name of a file from its name: ``"python"``, ``"tsx"``, ``"markdown"``... or ``"text"``."""
    name = posixpath.basename(path)
    if name in _BY_NAME:
        return _BY_NAME[name]
    return _BY_SUFFIX.get(posixpath.splitext(name)[1].lower(), "text")


def chunk_file(
    path: str,
    text: str,
    *,
    language: str | None = None,
    max_tokens: int = 256,
    count: TokenCounter | None = None,
) -> list[Chunk]:
    """The chunks of one file, in line order (parts of one body in part order).

    ``path`` is the POSIX path relative to the project root (stored in each chunk);
    ``language`` defaults to :func:`language_of`; ``max_tokens`` is the model window in word
    pieces including [CLS]/[SEP]; ``count`` counts a text's word pieces without special
    tokens (default :func:`estimate_tokens`, with an 8 % safety margin; an exact counter gets
    the whole window).  Never raises on odd input: an unparsable file
    gets line windows, an empty or blank one no chunks.
    """
    lang = language or language_of(path)
    src = Source(path, text, lang, count, max_tokens)
    chunks: list[Chunk] | None = None
    if lang == "python":
        chunks = chunk_python(src)
    elif lang == "markdown":
        chunks = chunk_markdown(src)
    else:
        from core.rag.chunk_treesitter import GRAMMARS, chunk_treesitter

        if lang in GRAMMARS:
            chunks = chunk_treesitter(src)
    if chunks is None:
        chunks = [src.chunk(a, b, "window") for a, b in src.windows(1, src.n, src.limit)]
    return chunks
