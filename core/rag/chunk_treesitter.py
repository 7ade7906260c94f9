"""Chunks of JavaScript, TypeScript/TSX, Go, Rust, Java, C, C++, C#, Ruby and PHP by tree-sitter.

Heavy-ish: imports ``tree_sitter`` and the grammar wheels (one per language, each bundling
its compiled parser) inside :func:`chunk_treesitter`, never at import time.  Definitions:
functions, methods, classes and their kin (structs with bodies, interfaces, enums, traits,
Rust ``impl`` blocks, Go type declarations), found at any depth outside function bodies
(namespaces, ``export``, ``template<>`` and modules are looked through), and nested in
functions so a long function can shed them.  Qualified symbols: ``Class.method``, Go
``Receiver.Method``, Rust ``Type.method`` for an impl's functions, C++ ``ns::f`` as ``ns.f``.
A definition's lines include the comment/attribute lines right above it; its signature runs
from its first line that is not an annotation to the line where its body opens.
Returns ``None`` if the grammar cannot be loaded (the caller uses line windows).
"""

from __future__ import annotations

import importlib
import threading
from typing import Any

from core.rag.chunk_core import Def, Source, attach_comments, emit
from core.rag.chunks import Chunk

F, C = "function", "class"
_C_COMMENTS = ("//", "/*", "*", "*/")

# language -> (module, attribute returning the grammar capsule, {node type: kind}, comment/attribute prefixes)
GRAMMARS: dict[str, tuple[str, str, dict[str, str], tuple[str, ...]]] = {
    "javascript": (
        "tree_sitter_javascript",
        "language",
        {
            "function_declaration": F,
            "generator_function_declaration": F,
            "method_definition": F,
            "class_declaration": C,
            "variable_declarator": F,
        },
        (*_C_COMMENTS, "@"),
    ),
    "typescript": (
        "tree_sitter_typescript",
        "language_typescript",
        {
            "function_declaration": F,
            "generator_function_declaration": F,
            "method_definition": F,
            "class_declaration": C,
            "abstract_class_declaration": C,
            "interface_declaration": C,
            "enum_declaration": C,
            "variable_declarator": F,
        },
        (*_C_COMMENTS, "@"),
    ),
    "go": (
        "tree_sitter_go",
        "language",
        {"function_declaration": F, "method_declaration": F, "type_declaration": C},
        _C_COMMENTS,
    ),
    "rust": (
        "tree_sitter_rust",
        "language",
        {
            "function_item": F,
            "impl_item": C,
            "struct_item": C,
            "enum_item": C,
            "union_item": C,
            "trait_item": C,
            "macro_definition": F,
        },
        (*_C_COMMENTS, "#[", "#!["),
    ),
    "java": (
        "tree_sitter_java",
        "language",
        {
            "class_declaration": C,
            "interface_declaration": C,
            "enum_declaration": C,
            "record_declaration": C,
            "annotation_type_declaration": C,
            "method_declaration": F,
            "constructor_declaration": F,
        },
        (*_C_COMMENTS, "@"),
    ),
    "c": (
        "tree_sitter_c",
        "language",
        {
            "function_definition": F,
            "struct_specifier": C,
            "union_specifier": C,
            "enum_specifier": C,
        },
        _C_COMMENTS,
    ),
    "cpp": (
        "tree_sitter_cpp",
        "language",
        {
            "function_definition": F,
            "struct_specifier": C,
            "union_specifier": C,
            "enum_specifier": C,
            "class_specifier": C,
        },
        _C_COMMENTS,
    ),
    "csharp": (
        "tree_sitter_c_sharp",
        "language",
        {
            "class_declaration": C,
            "struct_declaration": C,
            "interface_declaration": C,
            "record_declaration": C,
            "enum_declaration": C,
            "method_declaration": F,
            "constructor_declaration": F,
            "destructor_declaration": F,
            "operator_declaration": F,
            "local_function_statement": F,
        },
        (*_C_COMMENTS, "["),
    ),
    "ruby": (
        "tree_sitter_ruby",
        "language",
        {"method": F, "singleton_method": F, "class": C, "module": C, "singleton_class": C},
        ("#",),
    ),
    "php": (
        "tree_sitter_php",
        "language_php",
        {
            "function_definition": F,
            "method_declaration": F,
            "class_declaration": C,
            "interface_declaration": C,
            "trait_declaration": C,
            "enum_declaration": C,
        },
        (*_C_COMMENTS, "#"),
    ),
}
GRAMMARS["tsx"] = ("tree_sitter_typescript", "language_tsx", *GRAMMARS["typescript"][2:])

_FUNCTION_VALUES = {
    "arrow_function",
    "function_expression",
    "function",
    "generator_function",
    "class",
}
_NAME_NODES = {
    "identifier",
    "field_identifier",
    "type_identifier",
    "qualified_identifier",
    "destructor_name",
    "operator_name",
    "property_identifier",
    "constant",
    "name",
    "scoped_identifier",
}
_ANNOTATIONS = {
    "decorator",
    "annotation",
    "marker_annotation",
    "attribute_item",
    "attribute_list",
    "comment",
    "line_comment",
    "block_comment",
    "attribute",
}
# Nodes that only dress one definition (`export`, `template<>`, `typedef`, `const f = ...`): it spans them.
_WRAPPERS = {
    "export_statement",
    "template_declaration",
    "type_definition",
    "lexical_declaration",
    "variable_declaration",
    "declaration",
    "ambient_declaration",
    "decorated_definition",
}
_MAX_DEPTH = 60  # deeper nesting (generated code) is left to the enclosing chunk

_parsers: dict[str, Any] = {}
_lock = threading.Lock()


def _parser(language: str) -> Any | None:
    """A cached tree-sitter parser for ``language``, or ``None`` if its grammar wheel is missing."""
    with _lock:
        if language not in _parsers:
            module, attr = GRAMMARS[language][:2]
            try:
                import tree_sitter

                grammar = getattr(importlib.import_module(module), attr)()
                _parsers[language] = tree_sitter.Parser(tree_sitter.Language(grammar))
            except (ImportError, AttributeError, ValueError, TypeError):
                _parsers[language] = None
        return _parsers[language]


def chunk_treesitter(src: Source) -> list[Chunk] | None:
    """The chunks of a source in a language of :data:`GRAMMARS`, or ``None`` without its grammar."""
    parser = _parser(src.language)
    if parser is None:
        return None
    data = "\n".join(src.lines).encode("utf-8", "surrogatepass")
    # A parser is not thread-safe; the lock also bounds memory to one tree at a time per process.
    with _lock:
        tree = parser.parse(data)
    finder = _Finder(src, GRAMMARS[src.language][2], GRAMMARS[src.language][3])
    return emit(src, finder.defs(tree.root_node, 0, 0))


class _Finder:
    def __init__(self, src: Source, types: dict[str, str], prefixes: tuple[str, ...]) -> None:
        self.src = src
        self.types = types
        self.prefixes = prefixes

    def defs(self, node: Any, floor: int, depth: int) -> list[Def]:
        """Definitions under ``node`` (not inside other definitions, which hold their own)."""
        out: list[Def] = []
        if depth > _MAX_DEPTH:
            return out
        prev_end = floor
        for child in node.named_children:
            found = self._def(child, prev_end, depth)
            if found is not None:
                out.append(found)
            elif child.end_point[0] > child.start_point[0]:
                inner = self.defs(child, prev_end, depth + 1)
                if len(inner) == 1 and child.type in _WRAPPERS:
                    # export / template / typedef / const wrappers: the definition spans them
                    d = inner[0]
                    d.start = min(d.start, child.start_point[0] + 1)
                    d.end = max(d.end, child.end_point[0] + 1)
                    if not d.name and child.type == "type_definition":
                        d.name = _text(child.child_by_field_name("declarator"))
                out.extend(inner)
            if child.type not in _ANNOTATIONS:
                prev_end = child.end_point[0] + 1
        return out

    def _def(self, node: Any, floor: int, depth: int) -> Def | None:
        kind = self.types.get(node.type)
        if kind is None:
            return None
        body = value = node.child_by_field_name("body")
        if node.type == "variable_declarator":  # const f = () => {...}
            value = node.child_by_field_name("value")
            if value is None or value.type not in _FUNCTION_VALUES:
                return None
            body = value.child_by_field_name("body")
            kind = C if value.type == "class" else F
        elif (
            kind == C
            and body is None
            and node.type not in ("type_declaration", "impl_item")
            and (node.type.endswith("_specifier") or node.named_child_count == 0)
        ):
            return None  # `struct foo *p;`: a use, not a definition
        name = _name(node)
        start = attach_comments(self.src, node.start_point[0] + 1, floor, self.prefixes)
        sig_start = _sig_start(node)
        sig_end = _sig_end(value if node.type == "variable_declarator" else node, body, sig_start)
        children = self.defs(body if body is not None else node, sig_end, depth + 1)
        return Def(name, kind, start, node.end_point[0] + 1, sig_start + 1, sig_end + 1, children)


def _sig_end(node: Any, body: Any | None, sig_start: int) -> int:
    """The last row of a definition's header: where its last part before the body ends.

    So ``f(a, b) {`` ends on its own row, an Allman ``{`` on the next row is left out, and a
    Ruby ``def f(a)`` is just that line.
    """
    if body is None:
        return sig_start
    end = sig_start
    for child in node.children:
        if child.start_byte >= body.start_byte:
            break
        if child.type not in _ANNOTATIONS:
            end = max(end, int(child.end_point[0]))
    return end


def _sig_start(node: Any) -> int:
    """The row where a definition proper begins: past decorators, annotations and attributes."""
    for child in node.children:
        if child.type in _ANNOTATIONS:
            continue
        if child.type == "modifiers":  # Java: annotations live among the modifiers
            for m in child.children:
                if m.type not in _ANNOTATIONS:
                    return int(m.start_point[0])
            continue
        return int(child.start_point[0])
    return int(node.start_point[0])


def _text(node: Any) -> str:
    if node is None:
        return ""
    raw = node.text.decode("utf-8", "replace") if node.text is not None else ""
    return raw.replace("::", ".").replace("->", ".")


def _name(node: Any) -> str:
    """The (partly qualified) name of a definition node."""
    t = node.type
    if t == "method_declaration" and node.child_by_field_name("receiver") is not None:  # Go
        recv = node.child_by_field_name("receiver")
        rtype = _first(recv, {"type_identifier"})
        return (
            f"{_text(rtype)}.{_text(node.child_by_field_name('name'))}"
            if rtype
            else _text(node.child_by_field_name("name"))
        )
    if t == "impl_item":  # Rust: the type the block implements
        return _text(node.child_by_field_name("type")).split("<")[0]
    if t == "type_declaration":  # Go: type X struct {...}
        spec = _first(node, {"type_spec", "type_alias"})
        return _text(spec.child_by_field_name("name")) if spec is not None else ""
    name = node.child_by_field_name("name")
    if name is not None:
        return _text(name)
    # C/C++: int *f(int) nests pointer and function declarators around the name
    decl = node.child_by_field_name("declarator")
    while decl is not None and decl.type not in _NAME_NODES:
        nxt = decl.child_by_field_name("declarator")
        if nxt is None:
            nxt = _first(decl, _NAME_NODES)
            decl = nxt
            break
        decl = nxt
    return _text(decl)


def _first(node: Any, types: set[str]) -> Any | None:
    """The first descendant (breadth-first) of one of ``types``."""
    queue = list(node.named_children)
    while queue:
        n = queue.pop(0)
        if n.type in types:
            return n
        queue.extend(n.named_children)
    return None
