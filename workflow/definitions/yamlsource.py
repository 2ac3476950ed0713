"""A strict YAML reader that remembers where every value came from.

It differs from ``yaml.safe_load`` in three ways that matter for hand-written
definitions:

* only ``true``/``false`` are booleans (YAML 1.2); ``on``, ``off``, ``yes`` and
  ``no`` stay strings, so an id such as ``no`` is never mangled into ``False``;
* dates stay strings, so a bad date is reported by validation with its line
  instead of crashing the parser;
* a key given twice in one mapping is an error, not a silent overwrite.

Every value's position is kept in :attr:`Document.positions`, keyed by its path
(``("points", 2, "due")``), so a validation error can name ``file:line:column``.

Files are parsed by libyaml's C parser when PyYAML has it (``yaml.__with_libyaml__``),
about ten times faster than PyYAML's pure-Python scanner; the nodes are composed, resolved
and checked by the same Python code either way, so the rules are the same. A text the C
parser refuses is read again by the pure-Python reader, so every syntax error keeps the
message and position it always had; without libyaml the pure-Python reader does it all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.reader import Reader
from yaml.resolver import Resolver

from workflow.errors import Problem

Path = tuple[str | int, ...]
Position = tuple[int, int]

_BOOL_TAG = "tag:yaml.org,2002:bool"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAP_TAG = "tag:yaml.org,2002:map"
_STR_TAG = "tag:yaml.org,2002:str"
_SEQ_TAG = "tag:yaml.org,2002:seq"
#: Deeper than any definition needs: the composer stops there (see _StrictLoader), and
#: so does the builder, where aliases of aliases can nest deeper than the nodes.
MAX_DEPTH = 40
#: More values than any definition needs; stops alias bombs (a few aliases per
#: level expand exponentially while staying shallow).
MAX_VALUES = 100_000


class _TooDeep(Exception):
    """Raised by the composer as soon as a value nests deeper than MAX_DEPTH."""

    def __init__(self, mark: yaml.Mark) -> None:
        super().__init__("nested too deeply")
        self.mark = mark


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans, no implicit timestamps and a depth limit.

    PyYAML composes nodes recursively, a few Python frames per level: a file of 500
    nested ``[`` would exhaust the stack. The composer counts its depth and stops at
    MAX_DEPTH, before the recursion gets anywhere near the interpreter's limit.
    """

    yaml_implicit_resolvers = {  # noqa: RUF012 - PyYAML reads this class attribute
        first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL_TAG, _TIMESTAMP_TAG)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    _depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH + 1:
                raise _TooDeep(self.peek_event().start_mark)  # type: ignore[no-untyped-call]
            return Composer.compose_node(self, parent, index)
        finally:
            self._depth -= 1


_StrictLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _c_loader() -> type | None:
    """The strict loader on libyaml's event parser, or None without libyaml.

    Only the scanning and parsing are libyaml's: the composer (with its depth limit), the
    resolver (with the strict implicit types) and the constructor are the pure loader's,
    so a text the C parser accepts gives exactly the nodes the pure one would. libyaml's
    own composer is not used: it recurses in C without a limit.
    """
    if not getattr(yaml, "__with_libyaml__", False):  # pragma: no cover - libyaml is built
        return None
    from yaml._yaml import CParser

    class _CStrictLoader(CParser, SafeConstructor, Resolver):
        yaml_implicit_resolvers = _StrictLoader.yaml_implicit_resolvers

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

        def resolve(self, kind: type, value: Any, implicit: Any) -> str:
            """Resolver.resolve, remembered for short scalars (keys and ids repeat): with
            no path resolvers the tag depends on the value and ``implicit`` alone."""
            if kind is not ScalarNode or len(value) > 64:
                return Resolver.resolve(self, kind, value, implicit)  # type: ignore[no-untyped-call,no-any-return]
            key = (value, implicit)
            tag = _SCALAR_TAGS.get(key)
            if tag is None:
                tag = Resolver.resolve(self, kind, value, implicit)  # type: ignore[no-untyped-call]
                if len(_SCALAR_TAGS) < 10_000:
                    _SCALAR_TAGS[key] = tag
            return tag

    return _CStrictLoader


#: Short scalars' resolved tags, shared by the C loaders (see _CStrictLoader.resolve).
_SCALAR_TAGS: dict[tuple[str, Any], str] = {}


class _Unusual(Exception):
    """The fast composer met something it leaves to the pure reader (any error)."""


def _compose(loader: Any) -> Node | None:  # noqa: C901 - one loop, one arm per event
    """PyYAML's ``Composer.get_single_node`` over the C parser's events, without recursion.

    It builds the very nodes the composer would (tags resolved the same way, anchors
    registered before their collection's children, marks as they come); at anything
    else (a second document, an unknown or repeated anchor, nesting past the limit) it
    raises :class:`_Unusual`, and the pure reader gives the message.
    """
    get = loader.get_event
    resolve = loader.resolve
    if type(get()) is not StreamStartEvent:
        raise _Unusual
    event = get()
    if type(event) is StreamEndEvent:
        return None
    if type(event) is not DocumentStartEvent:
        raise _Unusual
    anchors: dict[str, Node] = {}
    stack: list[Any] = []  # the open collections
    keys: list[Any] = []  # per open collection: a mapping's key waiting for its value
    root: Node | None = None
    done = False
    while not done:
        event = get()
        kind = type(event)
        node: Any
        if kind is ScalarEvent or kind is SequenceStartEvent or kind is MappingStartEvent:
            if len(stack) > MAX_DEPTH:
                raise _Unusual
            anchor = event.anchor
            if anchor is not None and anchor in anchors:
                raise _Unusual
            tag = event.tag
            if kind is ScalarEvent:
                if tag is None or tag == "!":
                    tag = resolve(ScalarNode, event.value, event.implicit)
                node = ScalarNode(
                    tag, event.value, event.start_mark, event.end_mark, style=event.style
                )
            else:
                node_kind = SequenceNode if kind is SequenceStartEvent else MappingNode
                if tag is None or tag == "!":
                    tag = resolve(node_kind, None, event.implicit)
                node = node_kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
            if anchor is not None:
                anchors[anchor] = node
            if kind is not ScalarEvent:
                stack.append(node)
                keys.append(_NO_KEY)
                continue
        elif kind is AliasEvent:
            if event.anchor not in anchors:
                raise _Unusual
            node = anchors[event.anchor]
        elif kind is SequenceEndEvent or kind is MappingEndEvent:
            node = stack.pop()
            keys.pop()
            node.end_mark = event.end_mark
        elif kind is DocumentEndEvent:
            done = True
            continue
        else:
            raise _Unusual
        if not stack:
            root = node
        elif type(stack[-1]) is SequenceNode:
            stack[-1].value.append(node)
        elif keys[-1] is _NO_KEY:
            keys[-1] = node
        else:
            stack[-1].value.append((keys[-1], node))
            keys[-1] = _NO_KEY
    if type(get()) is not StreamEndEvent:
        raise _Unusual
    return root


_NO_KEY = object()


_CStrictLoader = _c_loader()
#: What PyYAML's reader refuses before any parsing: checked first, so the C path never
#: sees a character libyaml might judge differently.
_NON_PRINTABLE = Reader.NON_PRINTABLE


@dataclass
class Document:
    """The plain data of one YAML file and the position of each value in it."""

    path: str
    data: Any
    positions: dict[Path, Position] = field(default_factory=dict)
    key_positions: dict[Path, Position] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def locate(self, loc: Path, *, key: bool = False) -> Position:
        """Return the position of the deepest known value along ``loc``.

        Parts of ``loc`` that are not in the document (a pydantic union tag such
        as ``"str"``, or a field that is missing) are skipped, so the answer is
        the closest enclosing value that exists.
        """
        known: Path = ()
        for part in loc:
            candidate = (*known, part)
            if candidate in self.positions:
                known = candidate
        if key and known in self.key_positions:
            return self.key_positions[known]
        return self.positions.get(known, (1, 1))

    def problem(self, loc: Path, message: str, *, key: bool = False) -> Problem:
        line, column = self.locate(loc, key=key)
        return Problem(self.path, line, column, message)


def _start(node: Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _TooLarge(Exception):
    """Raised inside the builder to stop expanding a document at once."""


class _Builder:
    def __init__(self, loader: _StrictLoader, doc: Document) -> None:
        self.loader = loader
        self.doc = doc
        self.values = 0

    def build(self, node: Node, path: Path, depth: int = 0) -> Any:
        self.doc.positions[path] = _start(node)
        self.values += 1
        if self.values > MAX_VALUES:
            self._fail(node, f"more than {MAX_VALUES} values (do aliases expand too far?)")
            raise _TooLarge
        if depth > MAX_DEPTH:  # aliases can nest deeper than the composer's nodes
            self._fail(node, "nested too deeply")
            raise _TooLarge
        if not isinstance(node, ScalarNode) and node.tag not in (_MAP_TAG, _SEQ_TAG):
            self._fail(node, f"tag {node.tag!r} is not allowed in definitions")
            return None
        if isinstance(node, MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        if isinstance(node, ScalarNode):
            if node.tag == _STR_TAG:  # what construct_object gives a plain text, faster
                return node.value
            return self.loader.construct_object(node, deep=True)
        self._fail(node, "unsupported YAML node")  # pragma: no cover - composer yields only these
        return None

    def _mapping(self, node: MappingNode, path: Path, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self._fail(key_node, "merge keys (<<) are not supported: write the keys out")
                continue
            key = (
                key_node.value
                if key_node.tag == _STR_TAG
                else self.loader.construct_object(key_node, deep=True)
            )
            if not isinstance(key, str):
                self._fail(key_node, f"key {key!r} must be text")
                continue
            if key in result:
                first = self.doc.key_positions[(*path, key)]
                self._fail(key_node, f"duplicate key {key!r} (first given on line {first[0]})")
                continue
            self.doc.key_positions[(*path, key)] = _start(key_node)
            result[key] = self.build(value_node, (*path, key), depth + 1)
        return result

    def _fail(self, node: Node, message: str) -> None:
        line, column = _start(node)
        self.doc.problems.append(Problem(self.doc.path, line, column, message))


def read_yaml(text: str, path: str) -> Document:
    """Parse one YAML document; syntax errors become :class:`Problem` entries."""
    if _CStrictLoader is not None and _NON_PRINTABLE.search(text) is None:
        doc = Document(path=path, data=None)
        loader = _CStrictLoader(text)
        try:
            root = _compose(loader)
        except (yaml.YAMLError, _Unusual):
            pass  # the pure reader says what is wrong, as it always has (below)
        else:
            try:
                if root is not None:
                    doc.data = _Builder(loader, doc).build(root, ())
            except _TooLarge:
                doc.data = None
            except yaml.YAMLError:
                pass  # a constructor's refusal (a bad tag): the pure reader words it
            else:
                return doc
        finally:
            loader.dispose()
    return _read_pure(text, path)


def _read_pure(text: str, path: str) -> Document:
    """Parse with PyYAML's pure-Python reader: the reference for every message."""
    doc = Document(path=path, data=None)
    loader: _StrictLoader | None = None
    try:
        loader = _StrictLoader(text)  # the reader checks every character here already
        root = loader.get_single_node()
        if root is not None:
            doc.data = _Builder(loader, doc).build(root, ())
    except _TooLarge:
        doc.data = None
    except _TooDeep as exc:
        line, column = exc.mark.line + 1, exc.mark.column + 1
        doc.problems.append(Problem(path, line, column, "nested too deeply"))
        doc.data = None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = exc.problem or exc.context or "invalid YAML"
        doc.problems.append(Problem(path, line, column, f"invalid YAML: {reason}"))
        doc.data = None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        reason = f"character U+{exc.character:04X} is not allowed in YAML"
        doc.problems.append(Problem(path, line, column, f"invalid YAML: {reason}"))
        doc.data = None
    except yaml.YAMLError as exc:
        doc.problems.append(Problem(path, 1, 1, f"invalid YAML: {exc}"))
        doc.data = None
    finally:
        if loader is not None:
            loader.dispose()
    return doc
