"""Chunks of other languages by tree-sitter: exact chunks per language on small sources."""

from __future__ import annotations

import pytest

from core.rag.chunking import chunk_file, language_of
from tests.rag.helpers import check_text, rows

SOURCES = {
    "a.ts": """\
import x from "y";

/** Doc. */
export class Foo<T> extends Bar {
  private n = 1;

  constructor(a: number) {
    super();
  }

  @dec()
  async get(id: string): Promise<T> {
    return this.n;
  }
}

export const add = (a: number, b: number): number => {
  return a + b;
};

interface Shape {
  area(): number;
}

function plain() {
  return 1;
}
""",
    "a.go": """\
package main

import "fmt"

// Point is a point.
type Point struct {
	X int
}

// Add adds.
func (p *Point) Add(q Point) Point {
	return Point{p.X + q.X}
}

func main() {
	fmt.Println(1)
}
""",
    "a.rs": """\
use std::fmt;

#[derive(Debug)]
struct P {
    x: i32,
}

impl<T> fmt::Display for P {
    /// Formats.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.x)
    }
}

fn main() {
    println!("hi");
}
""",
    "A.java": """\
package a;

public class A {
    private int x;

    @Override
    public String toString() {
        return "A";
    }

    public A(int x) {
        this.x = x;
    }
}
""",
    "a.c": """\
#include <stdio.h>

typedef struct {
    int x;
} point;

static int
add(int a, int b)
{
    return a + b;
}
""",
    "a.cpp": """\
namespace ns {
class K {
 public:
  int f() const { return 1; }
};
}

int ns::K::g(int a) {
  return a;
}

template <typename T>
T id(T x) {
  return x;
}
""",
    "a.rb": """\
module M
  class K < Base
    # hello
    def greet(name)
      "hi #{name}"
    end

    def self.make
      new
    end
  end
end
""",
    "a.cs": """\
namespace N;

public class K
{
    [Obsolete]
    public int F(int a)
    {
        return a;
    }
}
""",
    "a.php": """\
<?php
namespace App;

class K {
    public function f($a) {
        return $a;
    }
}

function g() {
    return 1;
}
""",
    "a.tsx": """\
import React from "react";

export function Button({ label }: Props) {
  return <button>{label}</button>;
}

export default class Panel extends React.Component<P> {
  render() {
    return <div />;
  }
}
""",
    "a.js": """\
// Adds numbers.
function add(a, b) {
  return a + b;
}

const obj = {
  x: 1,
};

class Stack {
  push(x) {
    this.items.push(x);
  }
}

module.exports = { add };
""",
}

EXPECTED = {
    "a.ts": [
        ("module", "", 1, 1, "", 0),
        ("class", "Foo", 3, 5, "export class Foo<T> extends Bar {", 0),
        ("method", "Foo.constructor", 7, 9, "constructor(a: number) {", 0),
        ("method", "Foo.get", 11, 14, "async get(id: string): Promise<T> {", 0),
        ("function", "add", 17, 19, "export const add = (a: number, b: number): number => {", 0),
        ("class", "Shape", 21, 23, "interface Shape {", 0),
        ("function", "plain", 25, 27, "function plain() {", 0),
    ],
    "a.go": [
        ("module", "", 1, 3, "", 0),
        ("class", "Point", 5, 8, "type Point struct {", 0),
        ("function", "Point.Add", 10, 13, "func (p *Point) Add(q Point) Point {", 0),
        ("function", "main", 15, 17, "func main() {", 0),
    ],
    "a.rs": [
        ("module", "", 1, 1, "", 0),
        ("class", "P", 3, 6, "struct P {", 0),
        ("class", "P", 8, 8, "impl<T> fmt::Display for P {", 0),
        ("method", "P.fmt", 9, 12, "fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {", 0),
        ("function", "main", 15, 17, "fn main() {", 0),
    ],
    "A.java": [
        ("module", "", 1, 1, "", 0),
        ("class", "A", 3, 4, "public class A {", 0),
        ("method", "A.toString", 6, 9, "public String toString() {", 0),
        ("method", "A.A", 11, 13, "public A(int x) {", 0),
    ],
    "a.c": [
        ("module", "", 1, 1, "", 0),
        ("class", "point", 3, 5, "typedef struct {", 0),
        ("function", "add", 7, 11, "static int\nadd(int a, int b)", 0),
    ],
    "a.cpp": [
        ("module", "", 1, 1, "", 0),
        ("class", "K", 2, 3, "class K {", 0),
        ("method", "K.f", 4, 4, "int f() const { return 1; }", 0),
        ("function", "ns.K.g", 8, 10, "int ns::K::g(int a) {", 0),
        ("function", "id", 12, 15, "T id(T x) {", 0),
    ],
    "a.rb": [
        ("class", "M", 1, 1, "module M", 0),
        ("class", "M.K", 2, 2, "class K < Base", 0),
        ("method", "M.K.greet", 3, 6, "def greet(name)", 0),
        ("method", "M.K.make", 8, 10, "def self.make", 0),
    ],
    "a.cs": [
        ("module", "", 1, 1, "", 0),
        ("class", "K", 3, 4, "public class K", 0),
        ("method", "K.F", 5, 9, "public int F(int a)", 0),
    ],
    "a.php": [
        ("module", "", 1, 2, "", 0),
        ("class", "K", 4, 4, "class K {", 0),
        ("method", "K.f", 5, 7, "public function f($a) {", 0),
        ("function", "g", 10, 12, "function g() {", 0),
    ],
    "a.tsx": [
        ("module", "", 1, 1, "", 0),
        ("function", "Button", 3, 5, "export function Button({ label }: Props) {", 0),
        ("class", "Panel", 7, 7, "export default class Panel extends React.Component<P> {", 0),
        ("method", "Panel.render", 8, 10, "render() {", 0),
    ],
    "a.js": [
        ("function", "add", 1, 4, "function add(a, b) {", 0),
        ("module", "", 6, 8, "", 0),
        ("class", "Stack", 10, 10, "class Stack {", 0),
        ("method", "Stack.push", 11, 13, "push(x) {", 0),
        ("module", "", 16, 16, "", 0),
    ],
}


@pytest.mark.parametrize("path", sorted(SOURCES))
def test_exact_chunks(path: str) -> None:
    chunks = chunk_file(path, SOURCES[path])
    check_text(chunks, SOURCES[path])
    assert rows(chunks) == EXPECTED[path]
    assert {c.language for c in chunks} == {language_of(path)}


def test_languages_by_name() -> None:
    assert [
        language_of(p)
        for p in ("a.ts", "b.tsx", "c.mjs", "d.h", "e.hpp", "f.cs", "Makefile", "g.xyz")
    ] == [
        "typescript",
        "tsx",
        "javascript",
        "c",
        "cpp",
        "csharp",
        "make",
        "text",
    ]


def test_a_long_go_function_is_split_into_parts_with_its_signature() -> None:
    body = "".join(
        f'\tvalue{i} := compute(value{i - 1}, "argument number {i}")\n' for i in range(1, 150)
    )
    src = f"package p\n\nfunc (s *Server) Long(a int) int {{\n\tvalue0 := a\n{body}\treturn value0\n}}\n"
    chunks = [c for c in chunk_file("long.go", src) if c.symbol]
    assert len(chunks) >= 3 and [c.part for c in chunks] == list(range(1, len(chunks) + 1))
    assert {(c.kind, c.symbol, c.signature) for c in chunks} == {
        ("function", "Server.Long", "func (s *Server) Long(a int) int {")
    }
    assert chunks[0].start_line == 3
    assert all(b.start_line == a.end_line + 1 for a, b in zip(chunks, chunks[1:], strict=False))
    assert chunks[-1].end_line == len(src.splitlines())


def test_broken_source_still_chunks_and_never_raises() -> None:
    src = "function ok() {\n  return 1;\n}\n\nfunction broken( {\n  return\n"
    chunks = chunk_file("b.js", src)
    check_text(chunks, src)
    assert ("function", "ok", 1, 3, "function ok() {", 0) in rows(chunks)
