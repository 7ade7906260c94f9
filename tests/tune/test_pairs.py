"""Pair mining on a fixture repository: the exact pairs of each kind, dedup, and the split by file."""

from __future__ import annotations

import shutil
from pathlib import Path

from core.rag.represent import passage_text
from core.tune import pairs as P

from . import fixture

LOGIN = ("login\ndef login(email, password):\n    user = find_user(email)\n"
         "    return issue_token(user) if user.check(password) else None")


def _keys(pairs: list[P.Pair]) -> list[tuple[str, str, str, str]]:
    return sorted((p.kind, p.query, p.path, p.symbol) for p in pairs)


def test_exact_pairs_of_each_kind(tmp_path: Path) -> None:
    repo = fixture.make(tmp_path)
    links, why = P.link_pairs(repo)
    assert why is None
    # Accepted code/test links only (the rejected one is not a pair); requirement IDs masked out of the query.
    assert _keys(links) == [
        ("link", "Logout. The Auth Service SHALL revoke the session token when the user logs out.",
         "tests/test_auth.py", "test_logout_revokes_the_token"),
        ("link", "Password login. WHEN a user submits a valid email and password, the Auth Service SHALL issue a "
         "session token.", "src/auth.py", "login"),
    ]
    docs = P.docstring_pairs(repo, ["src/auth.py", "src/billing.py", "tests/test_auth.py", "storage/specs/auth.md"])
    assert _keys(docs) == [
        ("docstring", "Check the password and issue a session token for the user.", "src/auth.py", "login"),
        ("docstring", "Revoke the session token so that no endpoint accepts it again.", "src/auth.py", "logout"),
        ("docstring", "Sum the amounts of every line of the invoice.", "src/billing.py", "Invoice.total"),
    ]
    by_symbol = {p.symbol: p for p in docs}
    assert by_symbol["login"].passage == LOGIN  # the code without its docstring, as the index embeds it
    commits, why = P.commit_pairs(repo)
    assert why is None
    # 'wip' is noise; the first commit added both functions; the third changed logout only; the fourth a test.
    assert _keys(commits) == [
        ("commit", "Add password login and logout", "src/auth.py", "login"),
        ("commit", "Add password login and logout", "src/auth.py", "logout"),
        ("commit", "Audit every logout of a session", "src/auth.py", "logout"),
        ("commit", "Test that logout revokes the token", "tests/test_auth.py", "test_logout_revokes_the_token"),
    ]
    # The function as it was in that commit: the first commit's logout has no audit line, the third's has.
    old, new = sorted((p for p in commits if p.symbol == "logout"), key=lambda p: p.query)
    assert "audit" not in old.passage and 'audit("logout")' in new.passage

    mined = P.mine(repo)
    assert mined.found == {"link": 2, "docstring": 3, "commit": 4}
    counts = mined.counts()
    assert sum(counts["train"].values()) + sum(counts["held_out"].values()) == 9  # nothing was a duplicate here
    assert not {p.path for p in mined.train} & {p.path for p in mined.held_out}


def test_dedup_keeps_the_first_of_each_query_and_passage() -> None:
    a = P.Pair("docstring", "Parse  the Config", "def f(): pass", "a.py", "f")
    b = P.Pair("commit", "parse the config", "def f(): pass", "a.py", "f")  # same query, case and spaces aside
    c = P.Pair("commit", "parse the config", "def g(): pass", "a.py", "g")
    empty = P.Pair("commit", "  ", "def h(): pass", "a.py", "h")
    assert P.dedup([a, b, c, empty]) == [a, c]


def test_split_is_by_file_deterministic_and_near_its_share() -> None:
    pairs = [P.Pair("docstring", f"q{i} {j}", f"p{i} {j}", f"pkg/mod{i}.py", "f") for i in range(2000) for j in (0, 1)]
    train, held = P.split(pairs)
    assert not {p.path for p in train} & {p.path for p in held}
    assert 0.17 < len({p.path for p in held}) / 2000 < 0.23
    assert P.split(pairs) == (train, held)
    assert [P.held_out(f"pkg/mod{i}.py") for i in range(50)] == [P.held_out(f"pkg/mod{i}.py") for i in range(50)]


def test_a_folder_without_git_or_links_gives_docstring_pairs_and_says_why(tmp_path: Path) -> None:
    repo = fixture.make(tmp_path)
    plain = tmp_path / "plain"
    shutil.copytree(repo, plain, ignore=shutil.ignore_patterns(".git", "traceability"))
    mined = P.mine(plain)
    assert mined.found == {"link": 0, "docstring": 3, "commit": 0}
    assert any("links" in n for n in mined.notes) and any("git" in n for n in mined.notes)


def test_passage_is_what_the_index_embeds(tmp_path: Path) -> None:
    from core.rag.chunking import chunk_file

    repo = fixture.make(tmp_path)
    text = (repo / "tests/test_auth.py").read_text()
    chunk = chunk_file("tests/test_auth.py", text)[0]
    links, _ = P.link_pairs(repo)
    assert passage_text(chunk) in {p.passage for p in links}


def test_methods_are_docstring_pairs_and_classes_are_not(tmp_path: Path) -> None:
    # Class pairs were measured to lower the tuned model's gain on function search (docs/finetune.md, run 2).
    (tmp_path / "shapes.py").write_text(
        'class Circle:\n    """A round shape given by its centre and radius."""\n\n'
        '    def area(self):\n        """Return the area enclosed by the circle."""\n'
        '        return 3.14 * self.r ** 2\n')
    docs = P.docstring_pairs(tmp_path, ["shapes.py"])
    assert _keys(docs) == [("docstring", "Return the area enclosed by the circle.", "shapes.py", "Circle.area")]
    assert docs[0].passage == "Circle.area\ndef area(self):\n        return 3.14 * self.r ** 2"


def test_is_test_path() -> None:
    for rel in ("tests/test_a.py", "pkg/test/util.py", "idlelib/idle_test/htest.py", "test_x.py", "pkg/a_test.py",
                "lib/testing/fixtures.py"):
        assert P.is_test_path(rel), rel
    for rel in ("src/auth.py", "pkg/contest.py", "testament/book.py", "pkg/latest.py"):
        assert not P.is_test_path(rel), rel


def test_test_module_docstrings_are_dropped_only_when_code_gives_enough() -> None:
    code = [P.Pair("docstring", f"q{i}", f"p{i}", f"src/m{i}.py", "f") for i in range(3)]
    tests = [P.Pair("docstring", f"t{i}", f"tp{i}", f"tests/test_m{i}.py", "test_f") for i in range(2)]
    link = P.Pair("link", "a requirement", "tp0", "tests/test_m0.py", "test_f")
    kept, why = P.prefer_code(code + tests + [link], enough=4)
    assert kept == code + tests + [link] and why is None  # 3 code pairs are not enough: tests fill in
    kept, why = P.prefer_code(code + tests + [link], enough=3)
    assert kept == code + [link]  # a link to a test is kept: a team's own word
    assert why == "2 docstring pairs of test modules left out (3 from the other modules are enough)"


def test_docstring_ranks_code_then_test_helpers_then_test_cases() -> None:
    def pair(path: str, symbol: str) -> P.Pair:
        return P.Pair("docstring", f"q {path} {symbol}", f"p {path} {symbol}", path, symbol)

    code = [pair("src/a.py", "parse"), pair("src/a.py", "Reader.read")]
    helpers = [pair("tests/test_a.py", "make_reader"), pair("tests/support.py", "ReaderMixin.newReader"),
               pair("tests/test_a.py", "TestReader.test_x.inner")]  # a function nested in a test is a helper
    cases = [pair("tests/test_a.py", "test_parse"), pair("tests/test_a.py", "TestReader.test_read"),
             pair("tests/test_a.py", "TestReader.setUp"), pair("tests/test_a.py", "TestReader.tearDownClass")]
    assert [P.docstring_rank(p) for p in code + helpers + cases] == [0, 0, 1, 1, 1, 2, 2, 2, 2]
    assert P.docstring_rank(pair("src/a.py", "test_fixture")) == 0  # outside test modules a name is just a name
    every = cases + helpers + code
    assert P.prefer_code(every, enough=6) == (every, None)  # 5 better-ranked pairs: test cases fill in
    kept, why = P.prefer_code(every, enough=5)
    assert kept == helpers + code
    assert why == "4 docstring pairs of test cases left out (5 from code and test helpers are enough)"
    kept, why = P.prefer_code(every, enough=2)
    assert kept == code and why == "7 docstring pairs of test modules left out (2 from the other modules are enough)"
