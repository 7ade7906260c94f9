"""Artefact ID patterns and whole-token matching.

An ID matches only as a whole token: ``REQ-AUTH-001`` is never found inside
``REQ-AUTH-0010``, ``XREQ-AUTH-001`` or ``REQ-AUTH-001_x``.  Each project may
replace the three patterns (requirement, task, design) in ``musubi.toml``.

Test names often spell an ID as an identifier (``test_req_auth_001_login``,
``TestREQ_AUTH_001``); :attr:`IdPatterns.ident` finds that form, case-blind,
with ``_`` in place of ``-``.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from core.errors import BadRequest

DEFAULT_REQUIREMENT = r"REQ-[A-Z][A-Z0-9]*(?:-[A-Z][A-Z0-9]*)?-\d{3,}"
DEFAULT_TASK = r"TASK-(?:[A-Z][A-Z0-9]*-){0,2}\d{3,}"
DEFAULT_DESIGN = r"ADR-(?:[A-Z0-9]+(?:\.[A-Z0-9]+)*-)?\d{3,}"  # ADR-001, ADR-P4-001, ADR-6.2-002

KINDS = ("requirement", "task", "design")

# Token boundaries: an ID is not glued to a word character or to a hyphenated
# continuation ("REQ-AUTH-001-x"), but may end a sentence ("... REQ-AUTH-001.").
_BEFORE = r"(?<![A-Za-z0-9_\-])"
_AFTER = r"(?![A-Za-z0-9_]|-[A-Za-z0-9])"
_GLUE = frozenset(string.ascii_letters + string.digits + "_-")
_GLUE_BYTES = frozenset((string.ascii_letters + string.digits + "_-").encode())


def _hyphens_to_underscores(pattern: str) -> str:
    """Replace literal ``-`` outside character classes with ``_`` (for identifier forms)."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
        elif ch == "[":
            in_class = True
        elif ch == "-":
            ch = "_"
        out.append(ch)
        i += 1
    return "".join(out)


def _top_level_alternation(pattern: str) -> bool:
    depth, in_class, i = 0, False, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            return True
        i += 1
    return False


def _literal_prefix(pattern: str) -> str:
    """The literal text every match starts with ("REQ-"), or "" when there is none for sure."""
    m = re.match(r"[A-Za-z][A-Za-z0-9]*-", pattern)
    if not m or _top_level_alternation(pattern):
        return ""
    rest = pattern[m.end() :]
    if rest[:1] in ("?", "*", "+", "{"):
        return ""  # the hyphen (or the letter before it) is optional or repeated
    return m.group(0)


@dataclass
class IdPatterns:
    """Compiled patterns of one project; ``any_*`` match an ID of any kind."""

    requirement: str = DEFAULT_REQUIREMENT
    task: str = DEFAULT_TASK
    design: str = DEFAULT_DESIGN

    def __post_init__(self) -> None:
        self.kind_res: dict[str, re.Pattern[str]] = {}
        for kind in KINDS:
            src = getattr(self, kind)
            if not isinstance(src, str) or not src:
                raise BadRequest(f"trace ID pattern for {kind} must be a non-empty regular expression.", field=f"{kind}_pattern")
            try:
                rx = re.compile(src)
            except re.error as exc:
                raise BadRequest(
                    f"trace ID pattern for {kind} {src!r} is not a valid regular expression ({exc}); "
                    f"fix {kind}_pattern in musubi.toml [trace].",
                    field=f"{kind}_pattern",
                ) from None
            if rx.groups:
                # Named/numbered groups would change what finditer reports; ask for (?:...).
                raise BadRequest(
                    f"trace ID pattern for {kind} {src!r} has capturing groups; use (?:...) instead.",
                    field=f"{kind}_pattern",
                )
            if rx.match(""):
                raise BadRequest(f"trace ID pattern for {kind} {src!r} matches the empty string.", field=f"{kind}_pattern")
            self.kind_res[kind] = re.compile(f"^(?:{src})$")
        alt = "|".join(f"(?:{getattr(self, k)})" for k in KINDS)
        # The exact whole-token expression (what `rg -P` is given in the benchmark).
        self.whole_token = f"{_BEFORE}(?:{alt}){_AFTER}"
        # A leading lookbehind defeats the regex engine's first-character scan (7x slower
        # here), so the boundary before an ID is checked in Python on the few matches.
        self.any_str = re.compile(f"(?:{alt}){_AFTER}")
        self.any_bytes = re.compile(self.any_str.pattern.encode())
        ident_alt = "|".join(f"(?:{_hyphens_to_underscores(getattr(self, k))})" for k in KINDS)
        # Identifier form: start of identifier, after '_' or at a camelCase hump.
        self.ident = re.compile(
            rf"(?:(?<![A-Za-z0-9])|(?-i:(?<=[a-z])(?=[A-Z])))(?:{ident_alt})(?![0-9])",
            re.IGNORECASE,
        )
        self.ident_whole_bytes = re.compile(self.ident.pattern.encode(), re.IGNORECASE)
        self.ident_bytes = re.compile(f"(?:{ident_alt})(?![0-9])".encode(), re.IGNORECASE)
        self.prefixes = {k: _literal_prefix(getattr(self, k)) for k in KINDS}
        # Cheap probe for identifier forms ("req_", "task_"): substring tests on lowered
        # text beat a case-blind regex by far; without literal prefixes, the regex.
        self._ident_probe: tuple[str, ...] | None = None
        self._prefix_bytes: tuple[bytes, ...] | None = None
        if all(self.prefixes.values()):
            self._prefix_bytes = tuple(dict.fromkeys(p.encode() for p in self.prefixes.values()))
            self._ident_probe = tuple(p.lower().replace("-", "_") for p in self.prefixes.values())

    def may_have_ident(self, text: str | bytes) -> bool:
        """False when ``text`` surely holds no identifier-form ID (test names)."""
        if self._ident_probe is None:
            return bool((self.ident_bytes if isinstance(text, bytes) else self.ident).search(text))  # type: ignore[arg-type]
        low = text.lower()
        if isinstance(low, bytes):
            return any(p.encode() in low for p in self._ident_probe)
        return any(p in low for p in self._ident_probe)

    def kind_of(self, token: str) -> str | None:
        """``requirement``, ``task`` or ``design`` for a canonical ID, else None."""
        for kind, rx in self.kind_res.items():
            if rx.match(token):
                return kind
        return None

    def canonical(self, ident_token: str) -> str | None:
        """The hyphenated upper-case ID an identifier-form token stands for, if valid."""
        token = ident_token.upper().replace("_", "-")
        return token if self.kind_of(token) else None

    def find(self, text: str) -> list[tuple[int, str]]:
        """(offset, ID) of every whole-token ID in ``text``."""
        out = []
        for m in self.any_str.finditer(text):
            p = m.start()
            # Safe to drop rather than retry inside: an ID is made of word characters and
            # hyphens, so no whole token can start within a match glued to its left.
            if p and text[p - 1] in _GLUE:
                continue
            out.append((p, m.group(0)))
        return out

    def find_bytes(self, data: bytes) -> list[tuple[int, str]]:
        """:meth:`find` over raw bytes (IDs are ASCII; the file's encoding does not matter).

        With literal prefixes ("REQ-", "TASK-", "ADR-") the candidates come from
        ``bytes.find`` (a memchr/two-way search in C, about twice as fast as the
        regex engine trying a match at every R, T and A of a file) and the regex only confirms.
        """
        out = []
        if self._prefix_bytes is None:
            for m in self.any_bytes.finditer(data):
                p = m.start()
                if not (p and data[p - 1] in _GLUE_BYTES):
                    out.append((p, m.group(0).decode("utf-8", "replace")))
            return out
        match = self.any_bytes.match
        seen: set[int] = set()
        for pre in self._prefix_bytes:
            p = data.find(pre)
            while p >= 0:
                if not (p and data[p - 1] in _GLUE_BYTES) and p not in seen:
                    hit = match(data, p)
                    if hit:
                        seen.add(p)
                        out.append((p, hit.group(0).decode("utf-8", "replace")))
                p = data.find(pre, p + 1)
        out.sort()
        return out

    def malformed_prefix(self, token: str) -> str | None:
        """The kind whose literal prefix ``token`` starts with although it is not a valid ID."""
        up = token.upper()
        for kind, prefix in self.prefixes.items():
            if prefix and up.startswith(prefix.upper()) and not self.kind_res[kind].match(token):
                return kind
        return None
