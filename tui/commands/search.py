"""``musubi search "QUERY"``: hybrid code search in the project (docs/search.md#search-api)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from core.errors import BadRequest
from core.limits import MAX_QUERIES
from tui.output import CliState, MusubiCommand, emit, example, line, pass_state, warn

if TYPE_CHECKING:
    from core.api.responses import SearchAnswer


def _human(d: SearchAnswer) -> None:
    if not d["results"]:
        line("no results.")
    for r in d["results"]:
        where = f"{r['path']}:{r['start_line']}-{r['end_line']}"
        line(f"{r['score']:7.3f}  {where}  {r['symbol'] or '-'}  ({r['language']})")
    if not d["complete"]:
        warn(f"the dense index covers {d['dense_coverage']:.0%} of the chunks (indexing is running or must be "
             "finished: musubi index); results may improve.")


def _read_queries(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            queries = [q.strip() for q in f if q.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise BadRequest(f"cannot read queries from {path}: {exc}; give a UTF-8 text file, one query per line.",
                         field="queries") from None
    if not queries:
        raise BadRequest(f"{path} holds no query; write one query per line.", field="queries")
    return queries


@click.command(
    "search",
    cls=MusubiCommand,
    epilog=example('musubi search "parse the config file"', 'musubi search "retry with backoff" --k 5 --lang python',
                   'musubi search "login" --path "src/**/*.py" --json', "musubi search --queries questions.txt"),
)
@click.argument("query", metavar='"QUERY"', required=False)
@click.option("--k", "k", metavar="N", default="10", show_default=True, help="Results to show, 1 to 100.")
@click.option("--path", "glob", metavar="GLOB", help="Only files matching GLOB (relative to the project root; "
              "a pattern without / matches file names).")
@click.option("--lang", metavar="L", help="Only chunks of this language (python, markdown, typescript, ...).")
@click.option("--queries", "queries_file", metavar="FILE", type=click.Path(dir_okay=False),
              help='One query per line; prints JSON lines {"query": ..., "results": [...]}.')
@pass_state
def cli_group(state: CliState, query: str | None, k: str, glob: str | None, lang: str | None,
              queries_file: str | None) -> None:
    """Search the project's code: dense (embeddings) and lexical (BM25) results, fused.

    Each result is a path relative to the project root with 1-based, inclusive lines. Index first
    with: musubi index.
    """
    if (query is None) == (queries_file is None):
        raise BadRequest('give a QUERY or --queries FILE (not both), e.g. musubi search "parse the config".',
                         field="query")
    from core.api import calls

    client = state.client()
    if query is not None:
        emit(state, client.call(calls.search(query, k, glob, lang)), _human)
        return
    assert queries_file is not None
    queries = _read_queries(queries_file)
    for start in range(0, len(queries), MAX_QUERIES):
        got = client.call(calls.search_batch(queries[start:start + MAX_QUERIES], k, glob, lang))
        for ans in got["answers"]:
            # JSON lines whether or not --json is given: this is the format scripts read.
            click.echo(json.dumps({"query": ans["query"], "results": ans["results"]}, ensure_ascii=False))
