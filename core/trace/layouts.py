"""Which layout each spec folder uses, the active Spec Kit feature, and "nothing recognised" diagnoses.

The layout of a folder is what its files turned out to hold (the forms the
parser recognised: ``musubi`` ID headings, ``kiro`` numbered requirements,
``speckit`` FR/SC items); where nothing was recognised, where the folder lives
says which layout was likely meant, and the diagnosis says what to write.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from core.trace.config import TraceConfig
from core.trace.specs import SpecDoc

LIST_FILES = 10  # spec files named in a diagnosis

_HINTS = {
    "kiro": ("write each requirement as '### Requirement N' with its user story and a numbered "
             "'#### Acceptance Criteria' list ('1. WHEN … THEN the system SHALL …'); see docs/trace.md#kiro"),
    "speckit": ("define requirements in spec.md as bold list items: '- **FR-001**: System MUST …' "
                "(success criteria '- **SC-001**: …'); see docs/trace.md#spec-kit"),
    "musubi": ("give each requirement a heading that starts with its ID ('## REQ-AUTH-001: Password login'), "
               "or set requirement_pattern in musubi.toml [trace] to the IDs you use; see docs/trace.md#musubi"),
}
_HINTS["custom"] = _HINTS["musubi"]


def folder_of(doc: SpecDoc) -> str:
    """The folder a spec file belongs to for layout reporting (a feature folder, storage/, or its directory)."""
    if doc.layout in ("kiro", "speckit"):
        return doc.path.rsplit("/", 1)[0]
    if doc.layout == "musubi":
        return "storage"
    return doc.path.rsplit("/", 1)[0] if "/" in doc.path else "."


def report(specs: list[SpecDoc]) -> list[dict[str, Any]]:
    """One entry per spec folder: where it is, which layout was recognised, what it holds."""
    out: dict[str, dict[str, Any]] = {}
    forms: dict[str, set[str]] = {}
    for d in specs:
        folder = folder_of(d)
        f = out.setdefault(folder, {"folder": folder, "location": d.layout, "feature": d.feature, "layout": "",
                                    "files": [], "requirements": 0, "design": 0, "tasks": 0})
        forms.setdefault(folder, set()).update(d.forms)
        f["files"].append(d.path)
        f["requirements"] += len(d.requirements)
        f["design"] += sum(1 for e in d.design if e.kind != "document")
        f["tasks"] += len(d.tasks)
    for folder, f in out.items():
        f["layout"] = "+".join(sorted(forms[folder])) or "none"
    return [out[k] for k in sorted(out)]


def active_feature(root: Path, specs: list[SpecDoc]) -> str | None:
    """The Spec Kit feature of the checked-out git branch (``001-photo-albums``), as Spec Kit finds it.

    The branch names the feature folder, or starts with its number (``001-...``).
    """
    features = sorted({d.feature for d in specs if d.layout == "speckit" and d.feature})
    if not features:
        return None
    branch = _branch(root)
    if not branch:
        return None
    name = branch.rsplit("/", 1)[-1]
    if name in features:
        return name
    num = re.match(r"^(\d+)-", name)
    if num:
        hits = [f for f in features if f.split("-", 1)[0] == num.group(1)]
        if len(hits) == 1:
            return hits[0]
    return None


def _branch(root: Path) -> str | None:
    git = root / ".git"
    try:
        if git.is_file():  # a linked work tree: "gitdir: <path>"
            text = git.read_text("utf-8", "replace").strip()
            if not text.startswith("gitdir:"):
                return None
            gd = Path(text.split(":", 1)[1].strip())
            git = gd if gd.is_absolute() else root / gd
        head = (git / "HEAD").read_text("utf-8", "replace").strip()
    except OSError:
        return None
    return head[len("ref: refs/heads/"):] if head.startswith("ref: refs/heads/") else None


def diagnose(specs: list[SpecDoc], config: TraceConfig) -> dict[str, Any] | None:
    """When spec files exist but no requirement was recognised: which files, what was tried, what to do."""
    if not specs or any(d.requirements for d in specs):
        return None
    likely = Counter(d.layout for d in specs).most_common(1)[0][0]
    files = [d.path for d in specs]
    tried = [
        f"MUSUBI: a heading whose first token matches requirement_pattern {config.ids.requirement!r} "
        "('## REQ-AUTH-001: Title')",
        "Kiro: '### Requirement N' headings with numbered acceptance criteria",
        "Spec Kit: '- **FR-001**: …' / '- **SC-001**: …' bold list items",
    ]
    shown = ", ".join(files[:LIST_FILES]) + (f" and {len(files) - LIST_FILES} more" if len(files) > LIST_FILES else "")
    # The message alone must be enough (it is all a human reads): files, forms tried, where it looked.
    message = (
        f"{len(files)} spec file(s) found ({shown}) but no requirement was recognised in them; "
        f"likely layout: {likely}. Tried: headings starting with an ID matching requirement_pattern "
        f"{config.ids.requirement!r} (MUSUBI), '### Requirement N' headings (Kiro), '- **FR-001**: …' "
        f"items (Spec Kit), in the files matched by {', '.join(config.requirement_globs)}. To fix: {_HINTS[likely]}."
    )
    return {
        "message": message,
        "spec_files": files,
        "tried": tried,
        "globs": config.requirement_globs,
        "likely_layout": likely,
        "hint": _HINTS[likely],
    }
