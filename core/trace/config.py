"""Per-project trace settings: ID patterns, where specs live, what a test file is.

Read from the ``[trace]`` table of ``musubi.toml`` at the repository root; every
key is optional.  Example::

    [trace]
    requirement_pattern = 'REQ-[A-Z]+-\\d{3}'
    requirements = ["docs/requirements/*.md"]   # added to the built-in layouts
    design = ["docs/adr/*.md"]
    tasks = ["plan/*.md"]
    test_globs = ["it/**"]                      # added to the per-language conventions
    exclude = ["vendor/**", "*.min.js"]
    fixtures = ["it/samples/**"]                # strings there are data, not links
    max_file_bytes = 2000000
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import BadRequest
from core.trace.ids import DEFAULT_DESIGN, DEFAULT_REQUIREMENT, DEFAULT_TASK, IdPatterns

CONFIG_FILE = "musubi.toml"

# Built-in layouts: MUSUBI (storage/...), Kiro (.kiro/specs/<feature>/...) and
# GitHub Spec Kit (specs/<feature>/..., older versions .specify/specs/<feature>/...).
REQUIREMENT_GLOBS = (
    "storage/specs/**/*.md", ".kiro/specs/*/requirements.md", "specs/*/spec.md", ".specify/specs/*/spec.md",
)
DESIGN_GLOBS = ("storage/design/**/*.md", ".kiro/specs/*/design.md", "specs/*/plan.md", ".specify/specs/*/plan.md")
TASK_GLOBS = ("storage/tasks/**/*.md", ".kiro/specs/*/tasks.md", "specs/*/tasks.md", ".specify/specs/*/tasks.md")
# Test fixtures: their string literals are sample data, never trace links (comments still count).
FIXTURE_GLOBS = ("**/fixtures/**", "**/__fixtures__/**", "**/testdata/**")

# Test files by the usual convention of each language (gitwildmatch patterns).
TEST_GLOBS = (
    # Python
    "test_*.py", "*_test.py", "**/tests/**/*.py", "**/test/**/*.py", "conftest.py",
    # JavaScript / TypeScript
    "*.test.js", "*.test.ts", "*.test.jsx", "*.test.tsx", "*.test.mjs", "*.test.cjs",
    "*.spec.js", "*.spec.ts", "*.spec.jsx", "*.spec.tsx", "**/__tests__/**",
    # Go, Rust, C, C++
    "*_test.go", "**/tests/**/*.rs", "test_*.c", "*_test.c", "*_test.cc", "*_test.cpp", "*_unittest.cc",
    # JVM, .NET, Swift, PHP
    "*Test.java", "*Tests.java", "*IT.java", "**/src/test/**", "*Test.kt", "*Tests.kt",
    "*Test.cs", "*Tests.cs", "*Tests.swift", "*Test.php",
    # Ruby, Elixir, shell
    "*_spec.rb", "**/spec/**/*.rb", "test_*.rb", "*_test.rb", "*_test.exs", "*.bats",
)

# Prose is not code: these are never scanned as code (spec files are parsed, not scanned).
DOC_EXTENSIONS = frozenset({".md", ".markdown", ".rst", ".txt", ".adoc", ".org"})

DEFAULT_MAX_FILE_BYTES = 2_000_000
LINKS_FILE = "storage/traceability/links.yml"


def _str_list(data: dict[str, Any], key: str) -> list[str]:
    v = data.get(key, [])
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        raise BadRequest(
            f"{CONFIG_FILE} [trace] {key} must be a list of non-empty glob strings, e.g. {key} = [\"docs/*.md\"].",
            field=key,
        )
    return v


@dataclass
class TraceConfig:
    """Everything the scanner needs to know about one repository."""

    ids: IdPatterns = field(default_factory=IdPatterns)
    requirement_globs: list[str] = field(default_factory=lambda: list(REQUIREMENT_GLOBS))
    design_globs: list[str] = field(default_factory=lambda: list(DESIGN_GLOBS))
    task_globs: list[str] = field(default_factory=lambda: list(TASK_GLOBS))
    test_globs: list[str] = field(default_factory=lambda: list(TEST_GLOBS))
    exclude: list[str] = field(default_factory=list)
    fixtures: list[str] = field(default_factory=lambda: list(FIXTURE_GLOBS))
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    source: str | None = None  # the config file read, if any

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | None = None) -> TraceConfig:
        known = {
            "requirement_pattern", "task_pattern", "design_pattern", "requirements", "design", "tasks",
            "test_globs", "exclude", "fixtures", "max_file_bytes",
        }
        unknown = sorted(set(data) - known)
        if unknown:
            raise BadRequest(
                f"{CONFIG_FILE} [trace] has unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}.",
                field=unknown[0],
            )
        for k in ("requirement_pattern", "task_pattern", "design_pattern"):
            if k in data and not isinstance(data[k], str):
                raise BadRequest(f"{CONFIG_FILE} [trace] {k} must be a string (a regular expression).", field=k)
        ids = IdPatterns(
            data.get("requirement_pattern", DEFAULT_REQUIREMENT),
            data.get("task_pattern", DEFAULT_TASK),
            data.get("design_pattern", DEFAULT_DESIGN),
        )
        mfb = data.get("max_file_bytes", DEFAULT_MAX_FILE_BYTES)
        if not isinstance(mfb, int) or isinstance(mfb, bool) or mfb <= 0:
            raise BadRequest(f"{CONFIG_FILE} [trace] max_file_bytes must be a positive integer (bytes).", field="max_file_bytes")
        return cls(
            ids=ids,
            requirement_globs=[*REQUIREMENT_GLOBS, *_str_list(data, "requirements")],
            design_globs=[*DESIGN_GLOBS, *_str_list(data, "design")],
            task_globs=[*TASK_GLOBS, *_str_list(data, "tasks")],
            test_globs=[*TEST_GLOBS, *_str_list(data, "test_globs")],
            exclude=_str_list(data, "exclude"),
            fixtures=[*FIXTURE_GLOBS, *_str_list(data, "fixtures")],
            max_file_bytes=mfb,
            source=source,
        )

    @classmethod
    def load(cls, repo: Path) -> TraceConfig:
        """The ``[trace]`` table of ``<repo>/musubi.toml``, or the defaults when there is none."""
        path = repo / CONFIG_FILE
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            raise BadRequest(f"cannot read {path}: {exc.strerror}.") from None
        try:
            doc = tomllib.loads(raw.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise BadRequest(f"{path} is not valid TOML ({exc}); fix or remove it.") from None
        table = doc.get("trace", {})
        if not isinstance(table, dict):
            raise BadRequest(f"{path}: 'trace' must be a table ([trace]).")
        return cls.from_dict(table, str(path))

    def fingerprint(self) -> str:
        """Changes whenever a setting that affects per-file scan results changes."""
        return repr(
            (self.ids.requirement, self.ids.task, self.ids.design, self.test_globs, self.fixtures, self.max_file_bytes)
        )
