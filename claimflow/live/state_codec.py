"""The live detector state as data: a closed set of types, never code.

Snapshots used to be pickles, and a pickle read back from the changelog topic runs whatever
its writer put in it. This codec writes the object graph of the state (the engine, the merge
and everything they hold) as msgpack of tagged nodes, and reads back only:

* plain values: None, bool, int, float (inf and NaN too), str, bytes;
* containers: list, tuple, dict, set, frozenset, deque (with its maxlen), Counter;
* dates, times, datetimes, time zones (`ZoneInfo` by name), `itertools.count`,
  `operator.attrgetter` (by attribute names);
* instances of the classes of a fixed list of claimflow modules (the engine, the events, the
  merge, the calendars: `ALLOWED_MODULES`), looked up by name in a table built from those
  modules when this one is imported; a name outside it is refused, never imported. msgspec
  Structs, NamedTuples and dataclasses are built from their declared fields (all of them,
  no other), other classes from their attributes; pydantic models (the configuration, the
  roster) are validated from their fields;
* those classes themselves (the engine's handler table is keyed by event class), and bound
  methods of their instances (the handlers), by name.

Shared references and cycles are kept (a node is written once and referred to by number), so
the detectors still share one alert book after a restore. New fields of these classes need
nothing here; a new kind of value (a function, a lock) makes `encode` fail with the path to
it, which the round-trip tests catch before a release.
"""

from __future__ import annotations

import dataclasses
import importlib
import itertools
import operator
import pkgutil
import re
from collections import Counter, deque
from datetime import date, datetime, time
from enum import Enum
from types import BuiltinMethodType, MethodType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from pydantic import BaseModel, ValidationError

ALLOWED_MODULES = (
    "claimflow.config",
    "claimflow.deadlines",
    "claimflow.contract.events",
    "claimflow.live.idle",
    "claimflow.contract.rejections",
    "claimflow.live.envelopes",
    "claimflow.live.live_engine",
    "claimflow.live.merge",
    "claimflow.staffing.advice",
    "claimflow.staffing.roster",
    "claimflow.timeutil",
    "claimflow.workhours",
    "claimflow.engine",  # and every module of the package
)
# The names these modules had in earlier layouts: before the package was grouped into layers
# (issue 17), and before the modules that held several jobs were split. A snapshot names each
# class by its module, so one written by a worker of such a layout names them so; they decode
# to the same classes, and an upgrade restores its state instead of rebuilding it from the
# input logs. Encoding always writes the current names. A module split in parts is listed once
# for each part.
FORMER_NAMES: tuple[tuple[str, str], ...] = (
    ("claimflow.events", "claimflow.contract.events"),
    ("claimflow.idle", "claimflow.live.idle"),
    ("claimflow.rejections", "claimflow.contract.rejections"),
    ("claimflow.sequencer", "claimflow.live.envelopes"),
    ("claimflow.sequencer", "claimflow.live.merge"),
    ("claimflow.sequencer", "claimflow.live.live_engine"),
    ("claimflow.staffing", "claimflow.staffing.advice"),
    ("claimflow.staffing", "claimflow.staffing.roster"),
    # Then renamed and split to say what they hold (issue 17, item 3).
    ("claimflow.live.sequencer", "claimflow.live.envelopes"),
    ("claimflow.live.sequencer", "claimflow.live.merge"),
    ("claimflow.live.sequencer", "claimflow.live.live_engine"),
    ("claimflow.engine.backlog", "claimflow.engine.sla_risk"),
)
# Attributes renamed to say what they hold: (class, as `module:qualname` in the current layout,
# and the former attribute name) -> the current name. A snapshot of an earlier version writes
# the former name; it decodes to the current one, under whichever module name the snapshot
# gives the class (FORMER_NAMES). Encoding always writes the current names.
FORMER_ATTRIBUTES: dict[tuple[str, str], str] = {
    # The detectors' settings were `s` (issue 17, item 3).
    ("claimflow.engine.sla_risk:Backlog", "s"): "settings",
    ("claimflow.engine.inflow:Inflow", "s"): "settings",
    ("claimflow.engine.hublink:HubLinks", "s"): "settings",
    ("claimflow.engine.feedback:Feedback", "s"): "settings",
    ("claimflow.engine.impact:Impact", "s"): "settings",
}
# Attributes added to plain classes since snapshots were first written, with the value an
# object restored from an earlier snapshot takes (a cache, or a default that means "as
# before"). Without an entry a snapshot of the earlier version would be refused on take-over
# (its shape differs) and the state rebuilt from the sequenced log.
ADDED_ATTRIBUTES: dict[tuple[str, str], Any] = {
    # Whether every input partition was heard of, remembered (issue 15): False asks again.
    ("claimflow.live.merge:Merge", "_heard_all"): False,
}
MAX_DEPTH = 200


class StateCodecError(ValueError):
    """State that cannot be written as data, or data that is not a state this code wrote."""


def _allowed_classes() -> dict[str, type]:
    names: list[str] = list(ALLOWED_MODULES)
    engine = importlib.import_module("claimflow.engine")
    names += [f"claimflow.engine.{m.name}" for m in pkgutil.iter_modules(engine.__path__)]
    table: dict[str, type] = {}
    for name in names:
        module = importlib.import_module(name)
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__ == name:
                table[f"{name}:{value.__qualname__}"] = value
    for former, current in FORMER_NAMES:
        for key, cls in list(table.items()):
            owner, _, qualname = key.partition(":")
            if owner == current:
                table[f"{former}:{qualname}"] = cls
    return table


_CLASSES: dict[str, type] | None = None
_BY_CLASS: dict[int, dict[type, dict[str, Any]]] = {}  # FORMER_/ADDED_ATTRIBUTES by class


def _classes() -> dict[str, type]:
    global _CLASSES  # noqa: PLW0603 - built once, on first use (the modules import this one)
    if _CLASSES is None:
        _CLASSES = _allowed_classes()
    return _CLASSES


def _by_class(table: dict[tuple[str, str], Any]) -> dict[type, dict[str, Any]]:
    """FORMER_ATTRIBUTES or ADDED_ATTRIBUTES by class, so that decoding an object costs one
    look-up; built once per table, on first use, like _CLASSES."""
    built = _BY_CLASS.get(id(table))
    if built is None:
        built = _BY_CLASS[id(table)] = {}
        for (name, attribute), value in table.items():
            built.setdefault(_classes()[name], {})[attribute] = value
    return built


def _name(cls: type, path: str = "") -> str:
    name = f"{cls.__module__}:{cls.__qualname__}"
    if _classes().get(name) is not cls:
        where = f"{path}: " if path else ""
        raise StateCodecError(f"{where}{name} is not a class the state codec may write")
    return name


def _attributes(obj: Any) -> list[tuple[str, Any]]:
    out = list(getattr(obj, "__dict__", {}).items())
    seen = {name for name, _ in out}
    for cls in type(obj).__mro__:
        # A class compiled by mypyc (setup.py) has neither __dict__ nor __slots__: it lists
        # its attributes in __mypyc_attrs__.
        for slot in (*getattr(cls, "__slots__", ()), *getattr(cls, "__mypyc_attrs__", ())):
            if slot not in ("__dict__", "__weakref__") and slot not in seen and hasattr(obj, slot):
                seen.add(slot)
                out.append((slot, getattr(obj, slot)))
    return out


def _compiled_method(value: Any) -> bool:
    """A method bound to an instance of a mypyc-compiled class (setup.py): a builtin method
    whose `__self__` is such an instance, not a MethodType."""
    return isinstance(value, BuiltinMethodType) and hasattr(
        type(getattr(value, "__self__", None)), "__mypyc_attrs__"
    )


_SEQUENCE_TAGS: dict[type, str] = {list: "L", tuple: "T", set: "S", frozenset: "F"}
# Containers holding only these are written in one piece (no node per item).
_PLAIN: set[type] = {str, int, float, bool, bytes, type(None)}
_KEYS: set[type] = {str, int, float}
_COUNT = re.compile(r"count\((-?\d+)\)")
_GETTER = re.compile(r"operator\.attrgetter\((.*)\)")


class _Pending:
    """A value not yet written: msgspec hands it to `_Encoder.hook` when it reaches it."""

    __slots__ = ("depth", "path", "value")

    def __init__(self, value: Any, path: str, depth: int) -> None:
        self.value = value
        self.path = path
        self.depth = depth


class _Encoder:
    """Writes the graph; `paths` (slower) names where each value sits, for error messages:
    `encode` runs without, and again with them only to explain a failure.

    The tree is built while msgspec writes it, not before: a node holds its children as
    `_Pending` and msgspec calls `hook` for each as it reaches it, so only the nodes on the
    path being written are alive: encoding the state of a 90-day replay (2.4 MB of msgpack)
    peaked at 17.7 MB traced with the whole tree built first, 8.1 MB this way, in half the
    time (the worker writes one at the end of a catch-up). msgspec writes in the order a
    recursive walk would, so shared nodes get the same numbers and the bytes are the same as
    a whole tree's."""

    def __init__(self, paths: bool = False) -> None:
        self.memo: dict[int, int] = {}
        self.keep: list[Any] = []  # keeps ids stable while encoding
        self.paths = paths

    def hook(self, pending: Any) -> Any:
        if type(pending) is not _Pending:  # msgspec found something a node cannot hold
            raise StateCodecError(f"{type(pending).__qualname__} reached msgspec unwritten")
        return self.node(pending.value, pending.path, pending.depth)

    def child(self, value: Any, path: str, depth: int) -> Any:
        """A plain value as it is; anything else written when msgspec reaches it."""
        if type(value) in _PLAIN:
            return value
        return _Pending(value, path, depth)

    def node(self, value: Any, path: str, depth: int = 0) -> Any:  # noqa: PLR0912 - one branch per type the codec allows: the allow-list itself
        if value is None:
            return None
        if isinstance(value, (bool, int, float, str, bytes)):
            if isinstance(value, Enum):
                return ["E", _name(type(value)), value.value]
            if type(value) not in (bool, int, float, str, bytes):
                raise StateCodecError(f"{path}: {type(value).__qualname__} is not a plain value")
            return value
        if isinstance(value, type):
            return ["K", _name(value)]
        if depth > MAX_DEPTH:
            raise StateCodecError(f"{path}: nested deeper than {MAX_DEPTH}")
        ref = self.memo.get(id(value))
        if ref is not None:
            return ["R", ref]
        index = len(self.memo)
        self.memo[id(value)] = index
        self.keep.append(value)
        d = depth + 1
        kind = type(value)
        if isinstance(value, MethodType) or _compiled_method(value):
            owner = self.child(value.__self__, f"{path}.__self__" if self.paths else "", d)
            return ["M", index, owner, value.__name__]
        if kind in (list, tuple, set, frozenset):
            if set(map(type, value)) <= _PLAIN:  # the common case, without a call per item
                return [_SEQUENCE_TAGS[kind] + "P", index, list(value)]
            items = [self.child(v, self._at(path, i), d) for i, v in enumerate(value)]
            return [_SEQUENCE_TAGS[kind], index, items]
        if kind is deque:
            if set(map(type, value)) <= _PLAIN:
                return ["QP", index, value.maxlen, list(value)]
            items = [self.child(v, self._at(path, i), d) for i, v in enumerate(value)]
            return ["Q", index, value.maxlen, items]
        if kind in (dict, Counter):
            if set(map(type, value)) <= _KEYS and set(map(type, value.values())) <= _PLAIN:
                return ["DP" if kind is dict else "CP", index, list(value.items())]
            pairs = [
                [self.child(k, self._at(path, "key"), d), self.child(v, self._at(path, k), d)]
                for k, v in value.items()
            ]
            return ["D" if kind is dict else "C", index, pairs]
        if kind is datetime:
            if value.tzinfo is not None and not isinstance(value.tzinfo, ZoneInfo):
                return ["DT", index, value.isoformat(), None]
            zone = value.tzinfo.key if isinstance(value.tzinfo, ZoneInfo) else None
            return ["DT", index, value.replace(tzinfo=None).isoformat(), zone]
        if kind is date:
            return ["DA", index, value.isoformat()]
        if kind is time:
            return ["TI", index, value.isoformat()]
        if kind is ZoneInfo:
            return ["Z", index, value.key]
        if kind is itertools.count:
            match = _COUNT.fullmatch(repr(value))
            if match is None:
                raise StateCodecError(f"{path}: {value!r} is not a whole-number count")
            return ["N", index, int(match.group(1))]
        if kind is operator.attrgetter:
            match = _GETTER.fullmatch(repr(value))
            names = re.findall(r"'([A-Za-z_][A-Za-z0-9_.]*)'", match.group(1) if match else "")
            if not names:
                raise StateCodecError(f"{path}: {value!r} cannot be written")
            return ["G", index, names]
        if isinstance(value, BaseModel):
            model = self.child(value.model_dump(by_alias=True), self._at(path, "model"), d)
            return ["P", index, _name(kind), model]
        name = _name(kind, path)
        if isinstance(value, msgspec.Struct):
            fields = [(f, getattr(value, f)) for f in kind.__struct_fields__]
        elif isinstance(value, tuple) and hasattr(kind, "_fields"):
            fields = list(zip(kind._fields, value, strict=True))
        elif dataclasses.is_dataclass(value):
            fields = [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
        else:
            fields = _attributes(value)
        return [
            "O",
            index,
            name,
            [[field, self.child(v, self._at(path, field), d)] for field, v in fields],
        ]

    def _at(self, path: str, key: Any) -> str:
        if not self.paths:
            return ""
        return (
            f"{path}.{key}" if isinstance(key, str) and key.isidentifier() else f"{path}[{key!r}]"
        )


class _Decoder:
    def __init__(self) -> None:
        self.memo: dict[int, Any] = {}

    def value(self, node: Any, depth: int = 0) -> Any:  # noqa: PLR0912, PLR0915 - one branch per type the codec allows: the allow-list itself
        if node is None or isinstance(node, (bool, int, float, str, bytes)):
            return node
        if depth > MAX_DEPTH:
            raise StateCodecError(f"nested deeper than {MAX_DEPTH}")
        if not isinstance(node, list) or len(node) < 2 or not isinstance(node[0], str):
            raise StateCodecError(f"not a state node: {str(node)[:80]}")
        tag, d = node[0], depth + 1
        if tag == "R":
            try:
                return self.memo[node[1]]
            except (KeyError, TypeError):
                raise StateCodecError(f"reference to node {node[1]!r} before it") from None
        if tag == "K":
            return self._class(node[1])
        if tag == "E":
            cls = self._class(node[1])
            if not issubclass(cls, Enum):
                raise StateCodecError(f"{node[1]} is not an enumeration")
            return cls(node[2])
        index = node[1]
        if not isinstance(index, int) or index in self.memo:
            raise StateCodecError(f"bad node number {index!r}")
        out: Any
        if tag in _PLAIN_TAGS:
            out = _plain(tag, node)
            self.memo[index] = out
            return out
        if tag in ("L", "S", "Q", "D", "C"):
            out = {"L": list, "S": set, "D": dict, "C": Counter}.get(tag, list)()
            if tag == "Q":
                maxlen = node[2]
                if maxlen is not None and not isinstance(maxlen, int):
                    raise StateCodecError("deque maxlen is not a whole number")
                out = deque(maxlen=maxlen)
            self.memo[index] = out  # before its items: they may refer back to it
            items = node[3] if tag == "Q" else node[2]
            if tag in ("D", "C"):
                for key, item in items:
                    decoded = self.value(key, d)  # first: the encoder wrote it first
                    out[decoded] = self.value(item, d)
            elif tag == "S":
                out.update(self.value(item, d) for item in items)
            else:
                out.extend(self.value(item, d) for item in items)
            return out
        if tag in ("T", "F"):
            items = [self.value(item, d) for item in node[2]]
            out = tuple(items) if tag == "T" else frozenset(items)
        elif tag == "DT":
            out = datetime.fromisoformat(node[2])
            if node[3] is not None:
                out = out.replace(tzinfo=_zone(node[3]))
        elif tag == "DA":
            out = date.fromisoformat(node[2])
        elif tag == "TI":
            out = time.fromisoformat(node[2])
        elif tag == "Z":
            out = _zone(node[2])
        elif tag == "N":
            out = itertools.count(int(node[2]))
        elif tag == "G":
            names = [str(n) for n in node[2]]
            if not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n) for n in names):
                raise StateCodecError("attribute getter with a bad name")
            out = operator.attrgetter(*names)
        elif tag == "P":
            cls = self._class(node[2])
            if not issubclass(cls, BaseModel):
                raise StateCodecError(f"{node[2]} is not a settings model")
            try:
                out = cls.model_validate(self.value(node[3], d))
            except ValidationError as exc:
                raise StateCodecError(f"{node[2]} does not validate: {exc}") from None
        elif tag == "M":
            owner = self.value(node[2], d)
            method = getattr(type(owner), str(node[3]), None)
            if not callable(method) or str(node[3]).startswith("__"):
                raise StateCodecError(f"{type(owner).__qualname__} has no method {node[3]!r}")
            # A mypyc-compiled class's method binds natively (a builtin method), as it did
            # when it was written.
            compiled = hasattr(type(owner), "__mypyc_attrs__")
            out = method.__get__(owner, type(owner)) if compiled else MethodType(method, owner)
        elif tag == "O":
            return self._object(index, node[2], node[3], d)
        else:
            raise StateCodecError(f"unknown node kind {tag!r}")
        self.memo[index] = out
        return out

    def _class(self, name: Any) -> type:
        cls = _classes().get(str(name))
        if cls is None:
            raise StateCodecError(f"{name!r} is not a class a snapshot may hold")
        return cls

    def _object(self, index: int, name: Any, pairs: Any, depth: int) -> Any:
        cls = self._class(name)
        if issubclass(cls, (Enum, BaseModel, BaseException)):
            raise StateCodecError(f"{name} cannot be built from attributes")
        if not isinstance(pairs, list) or not all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) for p in pairs
        ):
            raise StateCodecError(f"{name}: attributes are not a list of name-value pairs")
        if renamed := _by_class(FORMER_ATTRIBUTES).get(cls):
            pairs = [[renamed.get(n, n), v] for n, v in pairs]
        names = [p[0] for p in pairs]
        if any(n.startswith("__") for n in names) or len(set(names)) != len(names):
            raise StateCodecError(f"{name}: bad attribute names")
        declared = _declared_fields(cls)
        if declared is not None and set(names) != set(declared):
            raise StateCodecError(
                f"{name}: fields {sorted(names)} where this version has {sorted(declared)}"
            )
        if issubclass(cls, msgspec.Struct) or (issubclass(cls, tuple) and declared is not None):
            values = {n: self.value(v, depth) for n, v in pairs}
            built = cls(*(values[n] for n in declared or ()))
            self.memo[index] = built
            return built
        # A mypyc-compiled class refuses object.__new__; its own __new__ skips __init__ when
        # it is declared @mypyc_attr(serializable=True), as the engine's classes are.
        out = cls.__new__(cls) if hasattr(cls, "__mypyc_attrs__") else object.__new__(cls)
        self.memo[index] = out  # before its attributes: they may refer back to it
        for n, v in pairs:
            object.__setattr__(out, n, self.value(v, depth))
        for n, default in _by_class(ADDED_ATTRIBUTES).get(cls, {}).items():
            if n not in names:
                object.__setattr__(out, n, default)
        return out


_PLAIN_TAGS = ("LP", "TP", "SP", "FP", "QP", "DP", "CP")


def _plain(tag: str, node: list[Any]) -> Any:
    items = node[3] if tag == "QP" else node[2]
    if not isinstance(items, list):
        raise StateCodecError(f"{tag} node without items")
    if not set(map(type, items)) <= (_PLAIN | {list} if tag in ("DP", "CP") else _PLAIN):
        raise StateCodecError(f"{tag} node holds more than plain values")
    if tag in ("DP", "CP"):
        pairs = [(k, v) for k, v in items]
        if not set(map(type, (v for _, v in pairs))) <= _PLAIN:
            raise StateCodecError(f"{tag} node holds more than plain values")
        return dict(pairs) if tag == "DP" else Counter(dict(pairs))
    if tag == "QP":
        maxlen = node[2]
        if maxlen is not None and not isinstance(maxlen, int):
            raise StateCodecError("deque maxlen is not a whole number")
        return deque(items, maxlen=maxlen)
    return {"LP": list, "TP": tuple, "SP": set, "FP": frozenset}[tag](items)


def _declared_fields(cls: type) -> tuple[str, ...] | None:
    if issubclass(cls, msgspec.Struct):
        return tuple(cls.__struct_fields__)
    if issubclass(cls, tuple):
        fields = getattr(cls, "_fields", None)
        return tuple(fields) if fields is not None else None
    if dataclasses.is_dataclass(cls):
        return tuple(f.name for f in dataclasses.fields(cls))
    return None


def _zone(name: Any) -> ZoneInfo:
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise StateCodecError(f"unknown time zone {name!r}") from None


def shape_difference(restored: Any, template: Any, path: str = "state") -> str | None:
    """Where a restored state's objects differ in class or attribute names from those of a
    state this version builds (`template`, a fresh one), or None. Plain objects only: the
    fields of structs and dataclasses are checked on decoding."""
    seen: set[int] = set()
    todo = [(restored, template, path)]
    while todo:
        got, want, where = todo.pop()
        if id(got) in seen:
            continue
        seen.add(id(got))
        if type(got) is not type(want):
            return f"{where}: {type(got).__qualname__} where {type(want).__qualname__} belongs"
        if _declared_fields(type(got)) is not None or not _is_plain_object(got):
            continue
        mine, theirs = dict(_attributes(got)), dict(_attributes(want))
        if set(mine) != set(theirs):
            extra, missing = sorted(set(mine) - set(theirs)), sorted(set(theirs) - set(mine))
            return f"{where}: attributes {extra} not expected, {missing} missing"
        for name, value in mine.items():
            if _is_plain_object(value) and _is_plain_object(theirs[name]):
                todo.append((value, theirs[name], f"{where}.{name}"))
    return None


def _is_plain_object(value: Any) -> bool:
    cls = type(value)
    return (
        f"{cls.__module__}:{cls.__qualname__}" in _classes()
        and not isinstance(value, (BaseModel, Enum, tuple, msgspec.Struct))
        and not dataclasses.is_dataclass(value)
    )


def encode(state: Any) -> bytes:
    """The state as msgpack; StateCodecError names the path to anything it cannot write."""
    try:
        return _write(state, paths=False)
    except OverflowError as exc:  # msgpack holds 64-bit whole numbers; the state has no other
        raise StateCodecError(f"a whole number beyond 64 bits: {exc}") from None
    except StateCodecError:
        _write(state, paths=True)  # raises again, saying where
        raise


def _write(state: Any, paths: bool) -> bytes:
    encoder = _Encoder(paths)
    return msgspec.msgpack.Encoder(enc_hook=encoder.hook).encode(_Pending(state, "state", 0))


def decode(data: bytes) -> Any:
    """A state written by `encode`; anything else is a StateCodecError."""
    try:
        tree = msgspec.msgpack.decode(data)
    except msgspec.DecodeError as exc:
        raise StateCodecError(f"not msgpack: {exc}") from None
    try:
        return _Decoder().value(tree)
    except StateCodecError:
        raise
    except (TypeError, ValueError, IndexError, KeyError, AttributeError, RecursionError) as exc:
        raise StateCodecError(f"not a state this version wrote: {exc!r}") from None
