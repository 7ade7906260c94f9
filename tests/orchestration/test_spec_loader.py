"""Agents and workflows as data: shipped files, user/project overrides, bad files, the estimator's source."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import NotFound
from core.models.estimate import Document, estimate, load_workflows, workflow
from core.models.registry import load_registry
from core.orchestration.spec import (
    PROJECT_DIR,
    list_agents,
    list_workflows,
    load_catalog,
    load_workflow,
    plan,
    render_prompt,
)
from core.orchestration.specfile import SpecError, locate

SDD = {"requirements-analyst", "system-architect", "task-planner", "software-developer", "test-engineer",
       "code-reviewer", "triage"}


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder / name


def test_shipped_sdd_agents_and_their_prompts() -> None:
    cat = load_catalog()
    assert set(cat.agents) >= SDD
    assert "EARS" in cat.agents["requirements-analyst"].system_prompt
    assert "WHEN <trigger> THE <system> SHALL" in cat.agents["requirements-analyst"].system_prompt
    arch = cat.agents["system-architect"].system_prompt
    assert "C4" in arch and "ADR" in arch
    assert "unified diffs" in cat.agents["software-developer"].system_prompt
    assert cat.agents["software-developer"].artefact == "diff"
    assert cat.agents["triage"].task_kind == "classify"
    # every template renders (literal braces in the triage JSON example stay braces)
    for a in cat.agents.values():
        text = render_prompt(a, feature="FEATURE", input="IN")
        assert "{feature}" not in text
    assert '{"stage"' in render_prompt(cat.agents["triage"], feature="f")


def test_existing_workflow_names_keep_their_estimated_steps() -> None:
    wfs = load_workflows()
    assert {"spec", "implement", "full", "review", "summarise"} <= set(wfs)
    assert [s.task for s in wfs["spec"].steps] == ["requirements", "design", "tasks"]
    assert [s.task for s in wfs["implement"].steps] == ["implementation", "review", "test"]
    assert [s.task for s in wfs["review"].steps] == ["review"]
    assert [s.task for s in wfs["summarise"].steps] == ["summarise"]


@pytest.mark.parametrize("name", sorted(load_catalog().workflows))
def test_every_shipped_workflow_validates_runs_and_estimates(name: str) -> None:
    cat = load_catalog()
    w = cat.workflows[name]
    calls = plan(w, cat.agents)
    priced = workflow(name).steps
    assert [(c.task, c.prompt) for c in calls] == [(s.task, s.prompt) for s in priced]  # one source
    assert all(a in cat.agents for a in w.agent_names())
    import core.orchestration.patterns as p

    def types(s: object) -> list[str]:
        return [s.type, *(t for c in s.children for t in types(c))]  # type: ignore[attr-defined]

    assert all(t in p.PATTERNS for s in w.steps for t in types(s))
    reg = load_registry()
    r = estimate(reg, [reg.get("gpt-5.4")], [Document("a.md", "# Feature\nA login page.\n")], priced)
    assert r["models"][0]["cost_micros"]["expected"] > 0 and len(r["models"][0]["steps"]) == len(calls)


def test_user_and_project_files_override_by_name(tmp_path: Path) -> None:
    user, proj = tmp_path / "user", tmp_path / "proj"
    _write(user, "workflows.toml", '[workflow.review]\ndescription = "user review"\n'
           'steps = [ { agent = "code-reviewer" }, { agent = "test-engineer" } ]\n'
           '[workflow.mine]\ndescription = "user only"\nsteps = [ { agent = "summariser" } ]\n')
    _write(user, "agents.toml", '[agent.code-reviewer]\nrole = "Strict reviewer"\ntask = "review"\n'
           'prompt = "Be strict about {feature}."\n')
    cat = load_catalog(user_dir=user)
    assert cat.workflows["review"].description == "user review" and cat.workflows["review"].source.endswith(
        "user/workflows.toml")
    assert cat.agent_sources["code-reviewer"].endswith("user/agents.toml")
    # the shipped 'implement' now prices the user's reviewer prompt: estimate == run
    assert workflow("implement", user_dir=str(user)).steps[1].prompt == "Be strict about {feature}."
    _write(proj / PROJECT_DIR, "workflows.toml", '[workflow.review]\ndescription = "project review"\n'
           'steps = [ { agent = "code-reviewer" } ]\n')
    both = load_catalog(user_dir=user, project_root=proj)
    assert both.workflows["review"].description == "project review"
    assert both.workflows["mine"].description == "user only"  # the user's others stay
    assert load_workflow("review", user_dir=user, project_root=proj).source.endswith(".musubi/workflows.toml")
    assert [w.name for w in list_workflows(user_dir=user)] == sorted(cat.workflows)
    assert "Strict reviewer" in {a.role for a in list_agents(user_dir=user)}
    assert set(both.files) == {str(user / "agents.toml"), str(user / "workflows.toml"),
                               str(proj / PROJECT_DIR / "workflows.toml")}


def test_a_project_workflow_may_use_a_user_agent(tmp_path: Path) -> None:
    _write(tmp_path / "u", "agents.toml", '[agent.doc-writer]\nrole = "Docs"\ntask = "summarise"\nprompt = "Docs."\n')
    _write(tmp_path / "p" / PROJECT_DIR, "workflows.toml", '[workflow.docs]\nsteps = [ { agent = "doc-writer" } ]\n')
    assert load_workflow("docs", user_dir=tmp_path / "u", project_root=tmp_path / "p").steps[0].agents == (
        "doc-writer",)
    with pytest.raises(SpecError, match="no agent 'doc-writer'"):
        load_catalog(project_root=tmp_path / "p")


def test_unknown_workflow_names_the_known_ones() -> None:
    with pytest.raises(NotFound, match="known workflows are .*implement.*musubi workflows list"):
        load_workflow("nope")


def test_budgets(tmp_path: Path) -> None:
    _write(tmp_path, "workflows.toml", '[workflow.b]\nsteps = [ { agent = "summariser", max_turns = 3 } ]\n'
           'budget = { tokens = 5000, dollars = 0.25, turns = 10 }\n'
           '[workflow.b.agent_budget.summariser]\ndollars = 0.1\n')
    w = load_workflow("b", user_dir=tmp_path)
    assert (w.budget.tokens, w.budget.cost_micros, w.budget.turns) == (5000, 250_000, 10)
    assert w.agent_budgets["summariser"].cost_micros == 100_000 and w.steps[0].options["max_turns"] == 3


BAD_CASES = [
    # (file, text, expected fragments)
    ("workflows.toml", '[workflow.x]\nsteps = [ { agent = "a",\n }]\n',
     ["workflows.toml, line 2", "not valid TOML", "must stay on one line"]),
    ("workflows.toml", '[workflow.x]\ndescription = "d"\n\n[[workflow.x.steps]]\nagent = "code-reviewer"\n\n'
     '[[workflow.x.steps]]\ntype = "parallel"\njoin = "quorum"\njoins = 1\nsteps = [ { agent = "ghost" } ]\n',
     ["workflow.x.steps[1].steps[0].agent (line 11): no agent 'ghost'", "define it in agents.toml",
      "workflow.x.steps[1].joins (line 10): unknown option for a parallel step", "takes id, type"]),
    ("workflows.toml", '[workflow.x]\nsteps = [ { agent = "code-reviewer" }, { type = "nope" } ]\n',
     ["workflow.x.steps[1].type (line 2): unknown step type 'nope'", "use one of agent, sequential"]),
    ("workflows.toml", '[workflow.x]\nbudget = { dollars = -1 }\nsteps = [ { agent = "code-reviewer" } ]\n',
     ["workflow.x.budget.dollars (line 2)", "greater than 0"]),
    ("workflows.toml", '[workflow.x]\ndescrption = "typo"\nsteps = [ { agent = "code-reviewer" } ]\n',
     ["workflow.x.descrption (line 2): unknown key", "the keys here are description"]),
    ("workflows.toml", '[workflow.x]\ndescription = "no steps"\n', ["workflow.x.steps", "non-empty list"]),
    ("workflows.toml", '[workflows.x]\nsteps = []\n', ["workflows (line 1): unknown table", "[workflow.NAME]"]),
    ("agents.toml", '[agent.a]\nrole = "r"\ntask = "documentation"\nprompt = "Do {feature} with {oops}"\n',
     ["agent.a.task (line 3): unknown task kind 'documentation'", "agent.a.prompt (line 4): unknown placeholder {oops}",
      "write {{ }} for a literal brace"]),
    ("agents.toml", '[agent.a]\nrole = "r"\ntask = "review"\n', ["agent.a.prompt", "missing", "add prompt = ..."]),
    ("agents.toml", '[agent.a]\nrole = "r"\ntask = "review"\nprompt = "p"\ntier = "huge"\ncontext_budget = 500\n',
     ["agent.a.tier (line 5): unknown tier 'huge'", "agent.a.context_budget (line 6): a context budget without"]),
    ("agents.toml", '[agent.BadName]\nrole = "r"\ntask = "review"\nprompt = "p"\n', ["bad agent name 'BadName'"]),
]


@pytest.mark.parametrize(("fname", "text", "want"), BAD_CASES, ids=[c[2][0][:40] for c in BAD_CASES])
def test_bad_files_name_the_file_the_line_and_the_fix(tmp_path: Path, fname: str, text: str, want: list[str]) -> None:
    path = _write(tmp_path, fname, text)
    with pytest.raises(SpecError) as e:
        load_catalog(user_dir=tmp_path)
    msg = e.value.message
    assert str(path) in msg and e.value.exit_code == 2
    for w in want:
        assert w in msg, msg


def test_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "workflows.toml").mkdir()
    with pytest.raises(SpecError, match="is a folder"):
        load_catalog(user_dir=tmp_path)
    (tmp_path / "workflows.toml").rmdir()
    (tmp_path / "workflows.toml").write_bytes(b"\xff\xfe[")
    with pytest.raises(SpecError, match="not UTF-8"):
        load_catalog(user_dir=tmp_path)


def test_locate_follows_nested_array_tables_and_inline_steps() -> None:
    text = ("[workflow.w]\n"                      # 1
            "[[workflow.w.steps]]\n"             # 2
            "id = \"a\"\n"                        # 3
            "[[workflow.w.steps]]\n"             # 4
            "type = \"parallel\"\n"              # 5
            "  [[workflow.w.steps.steps]]\n"     # 6
            "  agent = \"x\"\n"                   # 7
            "  [[workflow.w.steps.steps]]\n"     # 8
            "  agent = \"y\"\n"                   # 9
            "[workflow.v]\n"                      # 10
            "steps = [\n"                         # 11
            "  { agent = \"p\", steps = [ { agent = \"q\" } ] },\n"  # 12
            "  { agent = \"r\" },\n"              # 13
            "]\n")
    assert locate(text, ("workflow", "w", "steps", 1, "type")) == 5
    assert locate(text, ("workflow", "w", "steps", 1, "steps", 1, "agent")) == 9
    assert locate(text, ("workflow", "w", "steps", 0, "id")) == 3
    assert locate(text, ("workflow", "v", "steps", 1, "agent")) == 13
    assert locate(text, ("workflow", "v", "steps", 0)) == 12


def test_the_documented_example_files_load(tmp_path: Path) -> None:
    """docs/workflows.md's agents and workflows examples are valid files (and use each other)."""
    import re

    doc = (Path(__file__).resolve().parents[2] / "docs" / "workflows.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", doc, re.S)
    agents = next(b for b in blocks if b.startswith("[agent."))
    workflows = next(b for b in blocks if b.startswith("[workflow."))
    _write(tmp_path, "agents.toml", agents)
    _write(tmp_path, "workflows.toml", workflows)
    w = load_workflow("ship", user_dir=tmp_path)
    assert [s.type for s in w.steps] == ["approval", "parallel", "agent"]
    assert w.agent_budgets["software-developer"].turns == 6 and w.budget.cost_micros == 4_000_000
    assert [c.agent for c in plan(w, load_catalog(user_dir=tmp_path).agents)] == [
        "software-developer", "code-reviewer", "security-reviewer", "test-engineer"]


def test_default_ids_and_misplaced_agents(tmp_path: Path) -> None:
    from tests.orchestration.helpers import problems

    _write(tmp_path, "workflows.toml", '[workflow.twice]\nsteps = [ { agent = "code-reviewer" }, '
           '{ agent = "code-reviewer" }, { type = "parallel", steps = [ { agent = "summariser" } ] } ]\n')
    w = load_workflow("twice", user_dir=tmp_path)
    assert [s.id for s in w.steps] == ["code-reviewer", "code-reviewer-2", "parallel-3"]
    assert any("sequential steps take no agent" in p and "put agent steps in its steps" in p
               for p in problems({"type": "sequential", "agent": "summariser", "steps": [{"agent": "summariser"}]}))
    assert any("agent steps take no agents" in p for p in problems({"agents": ["summariser", "triage"]}))
    _write(tmp_path, "workflows.toml", '[workflow.dup]\nsteps = [ { id = "a", agent = "summariser" }, '
           '{ id = "a", agent = "triage" } ]\n')
    with pytest.raises(SpecError, match=r"workflow\.dup\.steps\[1\]\.id \(line 2\): id 'a' is used twice"):
        load_catalog(user_dir=tmp_path)


def test_a_scalar_where_a_table_belongs_names_no_internal_class(tmp_path: Path) -> None:
    _write(tmp_path, "workflows.toml", '[workflow.x]\nbudget = 5\nsteps = [ { agent = "triage" } ]\n')
    with pytest.raises(SpecError) as e:
        load_catalog(user_dir=tmp_path)
    assert "workflow.x.budget (line 2): must be a table (got 5)" in e.value.message
    assert "_BudgetModel" not in e.value.message
