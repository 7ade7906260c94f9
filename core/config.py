"""The workstation's one settings file, ``config.toml``: its schema, its loader, its environment.

The engine (models, routing) and the TUI (looks, keys, reconnection) read the same
file through :func:`load_config` into the same :class:`Config`, a section per feature::

    theme = "nord"             # UI keys stay at the top level: any Textual theme
    color_system = "256"       # auto | truecolor | 256 | 16 | none
    animations = false

    [keymap]                   # binding id = "key[,key...]"; ids are listed by F1 and docs/tui.md
    mode_admin = "f7,a"
    quit = "ctrl+q"

    [engine]                   # how the TUI talks to the engine
    retry_max_s = 30

    [[models]]                 # add a model or change fields of a shipped one (docs/models.md)
    id = "azure/gpt-5.4"
    deployment = "prod-gpt54"

    [routing]                  # merged over the shipped router rules
    fallbacks = 2

    [search]                   # the embedding model and its worker (docs/search.md)
    idle_s = 600

``[providers]`` holds one table per LLM provider, checked by the engine
(core/orchestration/provider_settings.py, docs/providers.md); ``[connectors]`` is reserved
for the feature that will read it: accepted, a table of tables, keys defined by that feature.

The file is optional.  When it is missing the defaults apply and neither pydantic nor
tomllib is imported (a pydantic validator costs ~200 ms, more than half of a bare
Textual app's first frame).  When it exists it is validated once, whole: the sections
by pydantic against the dataclasses below, ``[[models]]`` and ``[routing]`` by the model
registry's own per-entry validation.  Any mistake is a :class:`ConfigError` (exit 2)
naming the file, the key, its line and the fix.

Environment variables override where users expect them; :data:`ENVIRONMENT` lists
each one with its precedence (docs/tui.md, "Environment", shows the same table).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.errors import BadRequest
from core.identity.settings import SsoSettings

CONFIG_NAME = "config.toml"
DOCS_HINT = "see docs/tui.md 'Config file' and docs/models.md"
ColorChoice = Literal["auto", "truecolor", "256", "16", "none"]
COLOR_CHOICES: tuple[str, ...] = ("auto", "truecolor", "256", "16", "none")

# name -> (what it sets, precedence).  One place for every variable the workstation reads;
# docs/tui.md "Environment" is checked against it (tests/docs/test_config_examples.py).
ENVIRONMENT: dict[str, tuple[str, str]] = {
    "MUSUBI_CONFIG_DIR": ("folder of config.toml", "beats the platform config dir"),
    "MUSUBI_HOME": (
        "the engine's home (database, socket, logs)",
        "--home wins; beats the platform data dir",
    ),
    "MUSUBI_TENANT": ("the tenant of a command or the TUI", "--tenant wins; beats 'default'"),
    "NO_COLOR": (
        "no colour when non-empty",
        "--color-system and config color_system win; beats COLORTERM/TERM",
    ),
    "COLORTERM": ("truecolor or 24bit: 24-bit colour", "after NO_COLOR; beats TERM"),
    "TERM_PROGRAM": (
        "a known truecolor terminal (iTerm, WezTerm, VS Code, ...)",
        "after TERM's own hints",
    ),
    "TERM": ("colour depth guess (256color, -direct, dumb, ...)", "last"),
    "MUSUBI_MAX_STREAMS": ("engine: event streams open at once", "read when the engine starts"),
    "MUSUBI_MAX_STREAMS_PER_USER": (
        "engine: event streams one user may hold",
        "read when the engine starts",
    ),
    "MUSUBI_ENGINE_PROFILE": (
        "engine: write cProfile stats to this file",
        "read when the engine starts",
    ),
    "MUSUBI_MAX_JOBS": ("engine: background jobs running at once (default 2)", "read when the engine starts"),
    "MUSUBI_TEST_JOB_KINDS": (
        "engine: 1 registers the test job kind test.count (a test hook, docs/jobs.md)",
        "read when the engine starts",
    ),
    "MUSUBI_TEST_RUNS": (
        "engine: 1 gives runs a scripted provider and test workflows from the home (a test hook, docs/runs.md)",
        "read when a run starts",
    ),
    "MUSUBI_TEST_FAKE_EMBEDDER": (
        "engine: DIM runs the search worker with the FakeEmbedder (a test hook, docs/search.md)",
        "read when the worker starts",
    ),
    "MUSUBI_TEST_INDEX_BATCH": ("engine: chunks per embed batch (a test hook, docs/search.md)", "read per index job"),
    "MUSUBI_TEST_INDEX_DELAY_S": ("engine: pause before each batch's save (a test hook)", "read per index job"),
    "MUSUBI_DB_MEMORY_LIMIT": ("engine: DuckDB's memory limit (e.g. 256MB)", "read when the engine starts"),
    "MUSUBI_TRACE_WATCH": ("engine: 0 turns the Trace file watchers off (polling only)", "read at each watch"),
    # -- LLM providers (issue 12, docs/providers.md): the vendors' conventional variables --
    "OPENAI_API_KEY": ("provider 'openai': its API key", "[providers.openai] in config.toml wins, key by key"),
    "OPENAI_BASE_URL": ("provider 'openai': its base URL (a proxy)", "[providers.openai] base_url wins"),
    "ANTHROPIC_API_KEY": ("provider 'anthropic': its API key", "[providers.anthropic] in config.toml wins"),
    "ANTHROPIC_BASE_URL": ("provider 'anthropic': its base URL (no /v1)", "[providers.anthropic] base_url wins"),
    "AZURE_OPENAI_ENDPOINT": ("provider 'azure': https://RESOURCE.openai.azure.com", "[providers.azure] wins"),
    "AZURE_OPENAI_API_KEY": ("provider 'azure': its api-key", "[providers.azure] api_key wins"),
    "OPENAI_API_VERSION": ("provider 'azure': the api-version query", "[providers.azure] api_version wins"),
    "OLLAMA_HOST": ("provider 'ollama': HOST[:PORT] of an Ollama server", "[providers.ollama] base_url wins"),
    "MUSUBI_SSO_DIR": ("folder of your SSO session and token caches (0700)", "beats the platform state dir"),
    # -- integrations (issue 17) --
    "MUSUBI_TEST_CONNECTORS": (
        "engine: name=module:attr,... adds connector entry points (a test hook, docs/integrations.md)",
        "read at each connector load",
    ),
    # -- jobs: finished jobs held in memory (core/jobs/service.py) --
    "MUSUBI_JOBS_KEPT": ("engine: finished jobs held in memory (default 500)", "read when the engine starts"),
    # -- tutorials (issue 18, docs/tutorials.md) --
    "MUSUBI_TUTORIALS_DIR": (
        "engine: a folder of tutorial files that add to or replace the shipped ones (authoring)",
        "read at each tutorial request",
    ),
    # -- local embedder (issue 19) --
    "MUSUBI_TEST_TUNE_GAIN": (
        "engine: tuning trains no model and reports this R@10/MRR gain (a test hook, docs/finetune.md)",
        "read per tuning job",
    ),
    "MUSUBI_TEST_TUNE_KILL_AT": (
        "engine: kill -9 itself at this point of an embedder switch, switched or discarded (a test hook, "
        "docs/finetune.md)",
        "read at each switch",
    ),
    "MUSUBI_TEST_TUNE_PAUSE_AT": (
        "engine: an embedder activation waits at this point, reembedding, reembedded or switching, until the "
        "test deletes $MUSUBI_HOME/tune-paused-<point> (a test hook, docs/finetune.md)",
        "read at each activation",
    ),
}


class ConfigError(BadRequest):
    """``config.toml`` cannot be read or does not validate; the message says where and how to fix it."""

    code = "bad_config"


@dataclass
class EngineSettings:
    """How the TUI talks to the engine (``[engine]``)."""

    __pydantic_config__ = {"extra": "forbid"}  # read by pydantic only

    retry_initial_s: float = 0.5
    """First wait after the engine connection is lost; doubles on each failure."""
    retry_max_s: float = 15.0
    """Longest wait between reconnection attempts."""
    poll_s: float = 15.0
    """How often quota headroom is re-read while connected (events also refresh it)."""


@dataclass
class SearchSettings:
    """The embedding model and its worker process (``[search]``; docs/search.md, "Embeddings and the worker")."""

    __pydantic_config__ = {"extra": "forbid"}  # read by pydantic only

    model: str | None = None
    """A local sentence-transformers model folder; None uses the packaged all-MiniLM-L6-v2."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where the model runs: ``auto`` picks CUDA when torch sees a device, else the CPU."""
    threads: int = 0
    """torch threads in the worker; 0 picks half the CPUs (1 on a 2-core machine, as measured)."""
    batch: int = 0
    """Texts per encode batch; 0 picks the measured default (16)."""
    idle_s: float = 300.0
    """Seconds the worker stays loaded after its last request; then it stops and frees its memory."""
    max_inflight: int = 8
    """Requests the engine may have queued at the worker at once; more wait their turn."""
    nice: int = 0
    """Niceness added to the worker process (0 to 19): higher lets the engine's own work go first."""

    def __post_init__(self) -> None:
        # Plain checks rather than pydantic constraints: this module must not import pydantic.
        if self.threads < 0 or self.threads > 256:
            raise ValueError("threads must be 0 (automatic) to 256")
        if self.batch < 0 or self.batch > 4096:
            raise ValueError("batch must be 0 (automatic) to 4096")
        if not 0 <= self.idle_s <= 86_400:
            raise ValueError("idle_s must be 0 to 86400 seconds")
        if not 1 <= self.max_inflight <= 1024:
            raise ValueError("max_inflight must be 1 to 1024")
        if not 0 <= self.nice <= 19:
            raise ValueError("nice must be 0 to 19")


@dataclass
class Config:
    """Everything ``config.toml`` may set.  Unknown keys are errors, so typos do not pass silently."""

    __pydantic_config__ = {"extra": "forbid"}  # read by pydantic only

    theme: str | None = None
    """Textual theme name; None picks textual-dark, or ansi-dark when only 16 colours are available."""
    color_system: ColorChoice = "auto"
    """Force a colour system; ``auto`` detects it from the environment. ``--color-system`` wins."""
    animations: bool = True
    """False turns animations off (as ``--no-animations`` does), useful over slow links."""
    keymap: dict[str, str] = field(default_factory=dict)
    """Binding id -> comma-separated keys, e.g. ``mode_admin = "f7,a"``."""
    engine: EngineSettings = field(default_factory=EngineSettings)
    """Connection behaviour of the TUI."""
    models: list[dict[str, Any]] = field(default_factory=list)
    """``[[models]]`` entries, checked field by field by :mod:`core.models.registry`."""
    routing: dict[str, Any] = field(default_factory=dict)
    """``[routing]`` rules merged over the shipped ones, checked by the registry."""
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """One table per LLM provider; its keys are checked by core/orchestration/provider_settings.py."""
    connectors: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Reserved: one table per connector."""
    search: SearchSettings = field(default_factory=SearchSettings)
    """The embedding model and worker (docs/search.md)."""
    sso: SsoSettings = field(default_factory=SsoSettings)
    """Identity providers for ``musubi login`` and the engine's token checks (docs/identity.md)."""

    def registry_input(self) -> dict[str, Any]:
        """The ``models`` and ``routing`` sections as :func:`core.models.registry.load_registry` takes them."""
        out: dict[str, Any] = {}
        if self.models:
            out["models"] = self.models
        if self.routing:
            out["routing"] = self.routing
        return out


# -- where, and the environment -----------------------------------------------------------


def env(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The variable ``name`` (one of :data:`ENVIRONMENT`), None when unset or empty."""
    if name not in ENVIRONMENT:  # a typo here would silently read nothing
        raise KeyError(f"{name} is not listed in core.config.ENVIRONMENT")
    value = (os.environ if environ is None else environ).get(name, "")
    return value or None


def env_tenant(flag: str | None = None) -> str | None:
    """``--tenant``, else ``MUSUBI_TENANT``, else None (the engine then uses ``default``)."""
    return flag or env("MUSUBI_TENANT")


def current_dir() -> str:
    """The working directory, or ``/`` when it was deleted under us (then no project applies).

    What a client sends as ``X-Musubi-Cwd``: the engine picks the request's project from it.
    """
    try:
        return os.getcwd()
    except OSError:
        return "/"


def env_home(flag: str | None = None) -> str | None:
    """``--home``, else ``MUSUBI_HOME``, else None (the platform data dir)."""
    return flag or env("MUSUBI_HOME")


def config_dir() -> Path:
    """Directory of ``config.toml``: ``MUSUBI_CONFIG_DIR``, else the platform config dir."""
    chosen = env("MUSUBI_CONFIG_DIR")
    if chosen:
        return Path(chosen).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("musubi", appauthor=False))


def config_path() -> Path:
    """Where ``config.toml`` is looked for."""
    return config_dir() / CONFIG_NAME


_TOP_LEVEL = (
    "theme",
    "color_system",
    "animations",
    "[keymap]",
    "[engine]",
    "[[models]]",
    "[routing]",
    "[providers]",
    "[connectors]",
    "[search]",
    "[sso]",
)


# -- loading --------------------------------------------------------------------------------


def read_toml(path: Path) -> tuple[dict[str, Any], str] | None:
    """The parsed file and its text; None when it does not exist; :class:`ConfigError` when unreadable."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ConfigError(
            f"config file {path} is a folder; config.toml must be a file. Move the folder aside."
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {path}: {exc.strerror}. Check its permissions."
        ) from None
    import tomllib  # lazy: most users have no config file

    try:
        text = raw.decode("utf-8")
        return tomllib.loads(text), text
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text; save it as UTF-8.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not valid TOML: {exc}. Fix the syntax or move the file aside."
        ) from None


def load_config(path: Path | None = None, *, check_models: bool = True) -> Config:
    """Read and validate ``config.toml`` (default: :func:`config_path`); defaults when it does not exist.

    ``check_models=False`` leaves ``[[models]]`` and ``[routing]`` to a caller that builds
    the registry right away (the engine), so they are validated once there.
    """
    path = path or config_path()
    got = read_toml(path)
    if got is None:
        return Config()
    data, text = got
    return parse_config(data, str(path), text, check_models=check_models)


def parse_config(
    data: Mapping[str, Any], source: str, text: str | None = None, *, check_models: bool = True
) -> Config:
    """Validate parsed TOML ``data`` read from ``source``; :class:`ConfigError` names each bad key and its line."""
    import pydantic  # lazy: only paid for when a config file exists

    try:
        cfg = pydantic.TypeAdapter(Config).validate_python(dict(data))
    except pydantic.ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(err.get("loc", ()))
            got = err.get("input")
            shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
            msg = str(err.get("msg", "invalid value"))
            if err.get("type") in ("extra_forbidden", "unexpected_keyword_argument"):
                msg, shown = "unknown setting (check the spelling)", ""
                if len(loc) == 1:
                    msg = f"unknown setting (check the spelling; the file knows {', '.join(_TOP_LEVEL)})"
            lines.append(f"  - {_format_loc(loc)}: {msg}{shown}{_at_line(text, loc)}")
        raise ConfigError(
            f"config file {source} is invalid:\n" + "\n".join(lines) + "\n"
            f"Fix those keys ({DOCS_HINT}) or move the file aside."
        ) from None
    if check_models and (cfg.models or cfg.routing):
        from core.models.registry import load_registry  # lazy: pydantic models of the registry

        load_registry(cfg.registry_input(), f"config file {source}", model_lines=model_lines(text))
    return cfg


def _format_loc(loc: tuple[Any, ...]) -> str:
    if len(loc) >= 2 and loc[0] == "models" and isinstance(loc[1], int):
        return f"[[models]] #{loc[1] + 1}" + (
            "." + ".".join(str(p) for p in loc[2:]) if loc[2:] else ""
        )
    return ".".join(str(p) for p in loc) or "(top level)"


def model_lines(text: str | None) -> list[int]:
    """Line numbers (1-based) of each ``[[models]]`` header in ``text``, in order."""
    if text is None:
        return []
    return [
        i for i, line in enumerate(text.splitlines(), 1) if line.strip().startswith("[[models]]")
    ]


def _at_line(text: str | None, loc: tuple[Any, ...]) -> str:
    """``, line N`` for the key at ``loc``, best effort: the section header, then the key under it."""
    if text is None or not loc:
        return ""
    lines = text.splitlines()
    start, key = 0, str(loc[0])
    if len(loc) >= 2:
        if loc[0] == "models" and isinstance(loc[1], int):
            heads = model_lines(text)
            if loc[1] >= len(heads):
                return ""
            start, key = heads[loc[1]], str(loc[2]) if len(loc) > 2 else ""
        else:
            header = f"[{loc[0]}]"
            hit = next((i for i, ln in enumerate(lines, 1) if ln.strip().startswith(header)), None)
            if hit is None:
                return ""
            start, key = hit, str(loc[1])
        if not key:
            return f", line {start}"
    for i in range(start, len(lines)):
        stripped = lines[i].strip()
        if stripped.startswith("["):
            break  # the next section (or, for a top-level key, the first one): not found
        name = stripped.split("=", 1)[0].strip().strip("\"'")
        if "=" in stripped and name == key:
            return f", line {i + 1}"
    if start:
        return f", line {start}"
    # A top-level name that is not a key: a section header such as [model] or [[model]].
    for i, line in enumerate(lines, 1):
        head = line.strip().lstrip("[").split("]", 1)[0].split(".", 1)[0].strip()
        if line.strip().startswith("[") and head == key:
            return f", line {i}"
    return ""
