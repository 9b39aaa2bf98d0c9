"""A pickle's tensor names and shapes, read without running it.

``.ckpt``/``.pt`` files are pickles, and unpickling one can run any code it names. Here the
opcodes (``pickletools.genops``) drive a stack machine over inert values: a ``GLOBAL`` becomes a
``Global`` record, never an import, and a ``REDUCE`` becomes a ``Call`` record, never a call.
torch writes each tensor as ``Call(torch._utils._rebuild_tensor_v2, (storage, offset, size,
...))``, so the sizes can be read off the records, and every global the pickle names is listed,
so the library can say that a file would be refused when loaded (or would run code if someone
unpickled it carelessly).
"""

from __future__ import annotations

import _compat_pickle  # the stdlib's Python 2 -> 3 name table, plain data
import pickletools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

MAX_OPS = 20_000_000  # a real SD checkpoint's data.pkl has ~50k; the byte bound comes first
MAX_NESTING = 6  # dicts inside dicts walked for tensors: {"state_dict": {...}} needs 2


class UnreadablePickle(Exception):
    """The bytes are not a pickle this reader understands (damaged, or an exotic opcode)."""


@dataclass(frozen=True)
class Global:
    """A ``module.name`` the pickle would import."""

    module: str
    name: str

    def __str__(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(eq=False)
class Call:
    """What the pickle would call (``REDUCE``, ``NEWOBJ``, ``INST``/``OBJ``), with its arguments."""

    func: object
    args: tuple[Any, ...]


@dataclass(frozen=True)
class PersistentId:
    """A reference outside the pickle: torch's storages (the tensor bytes in ``data/``)."""

    value: object


@dataclass
class PickleSummary:
    obj: object  # the top-level value, as inert records
    globals: set[Global] = field(default_factory=set)

    def unsafe_globals(self) -> list[Global]:
        """Globals beyond tensor plumbing: torch's weights-only loader refuses these files."""
        return sorted((g for g in self.globals if not is_tensor_global(g)), key=str)


# What torch's weights-only unpickler allows by default (torch 2.x), as rules over the names.
_PLAIN_GLOBALS = {
    "collections.OrderedDict",
    "collections.Counter",
    "builtins.set",
    "builtins.bytearray",
    "builtins.complex",
    "_codecs.encode",  # bytes, in protocol 2
    "torch.Size",
    "torch.device",
    "torch._tensor._rebuild_from_type_v2",
    "torch.nn.parameter.Parameter",
    "torch.serialization._get_layout",
}
_TYPE_MODULES = ("torch", "torch.cuda", "torch.storage", "torch.sparse", "torch.cuda.sparse")
_DTYPE_NAME = re.compile(
    r"(u?int\d+|float\d+(_\w+)?|bfloat16|complex\d+|bool|bits\w+|q?u?int\d+(x\d+)?"
    r"|per_(tensor|channel)_\w+)"
)


def is_tensor_global(g: Global) -> bool:
    if str(g) in _PLAIN_GLOBALS:
        return True
    if g.module == "torch._utils":
        return g.name.startswith("_rebuild_")
    if g.module in _TYPE_MODULES and g.name.endswith(("Storage", "Tensor")):
        return True
    return g.module == "torch" and _DTYPE_NAME.fullmatch(g.name) is not None


# --- the stack machine --------------------------------------------------------------------------


def _python3_name(module: str, name: str) -> Global:
    """Protocols 0-2 may name Python 2 modules (``__builtin__.exec``); the unpickler maps them
    to Python 3 ones with the standard table, and so does this reader."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    return Global(module, name)


_MARK = object()
_ORDERED_DICT = Global("collections", "OrderedDict")


class _Machine:
    def __init__(self) -> None:
        self.stack: list[Any] = []
        self.memo: dict[int, Any] = {}
        self.globals: set[Global] = set()

    def pop_to_mark(self) -> list[Any]:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i] is _MARK:
                items = self.stack[i + 1 :]
                del self.stack[i:]
                return items
        raise UnreadablePickle("MARK missing")

    def pop(self) -> Any:
        if not self.stack:
            raise UnreadablePickle("stack underflow")
        return self.stack.pop()

    def top(self) -> Any:
        if not self.stack:
            raise UnreadablePickle("stack underflow")
        return self.stack[-1]

    def add_global(self, module: object, name: object) -> Global:
        g = _python3_name(str(module), str(name))
        self.globals.add(g)
        return g

    def call(self, func: object, args: object) -> object:
        args = tuple(args) if isinstance(args, (tuple, list)) else (args,)
        if func == _ORDERED_DICT and not args:
            return {}  # the SETITEMS that follow fill it
        return Call(func, args)

    def set_items(self, target: object, items: list[Any]) -> None:
        if isinstance(target, dict):
            for key, value in zip(items[::2], items[1::2], strict=False):
                if isinstance(key, (str, int, float, bool, bytes, tuple)) or key is None:
                    try:
                        target[key] = value
                    except TypeError:  # a tuple holding a dict: not a key we need
                        pass


_PUSH_ARG = {
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
    "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE",
    "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8",
}  # fmt: skip
_CONSTANTS = {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}
_IGNORED = {"PROTO", "FRAME"}


def _step(m: _Machine, name: str, arg: Any) -> None:
    """Apply one opcode to the machine: a plain chain of branches, one per opcode family."""
    if name in _PUSH_ARG:
        m.stack.append(arg)
    elif name in _CONSTANTS:
        m.stack.append(_CONSTANTS[name])
    elif name in _IGNORED:
        pass
    elif name == "MARK":
        m.stack.append(_MARK)
    elif name in ("EMPTY_DICT", "EMPTY_LIST"):
        m.stack.append({} if name == "EMPTY_DICT" else [])
    elif name in ("EMPTY_TUPLE", "EMPTY_SET"):
        m.stack.append(())
    elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
        n = int(name[-1])
        items = [m.pop() for _ in range(n)][::-1]
        m.stack.append(tuple(items))
    elif name in ("TUPLE", "LIST", "FROZENSET"):
        items = m.pop_to_mark()
        m.stack.append(items if name == "LIST" else tuple(items))
    elif name == "DICT":
        d: dict[Any, Any] = {}
        m.set_items(d, m.pop_to_mark())
        m.stack.append(d)
    elif name == "SETITEM":
        value, key = m.pop(), m.pop()
        m.set_items(m.top(), [key, value])
    elif name == "SETITEMS":
        items = m.pop_to_mark()
        m.set_items(m.top(), items)
    elif name in ("APPEND", "APPENDS", "ADDITEMS"):
        items = [m.pop()] if name == "APPEND" else m.pop_to_mark()
        target = m.top()
        if isinstance(target, list):
            target.extend(items)
    elif name == "GLOBAL":
        module, _, attr = str(arg).partition(" ")
        m.stack.append(m.add_global(module, attr))
    elif name == "STACK_GLOBAL":
        attr, module = m.pop(), m.pop()
        m.stack.append(m.add_global(module, attr))
    elif name == "INST":
        module, _, attr = str(arg).partition(" ")
        m.stack.append(m.call(m.add_global(module, attr), m.pop_to_mark()))
    elif name == "OBJ":
        items = m.pop_to_mark()
        if not items:
            raise UnreadablePickle("OBJ without a class")
        m.stack.append(m.call(items[0], items[1:]))
    elif name == "REDUCE":
        args = m.pop()
        m.stack.append(m.call(m.pop(), args))
    elif name == "NEWOBJ":
        args = m.pop()
        m.stack.append(m.call(m.pop(), args))
    elif name == "NEWOBJ_EX":
        m.pop()  # kwargs
        args = m.pop()
        m.stack.append(m.call(m.pop(), args))
    elif name == "BUILD":
        m.pop()  # the state set on the object: not needed for names and shapes
    elif name == "BINPERSID":
        m.stack.append(PersistentId(m.pop()))
    elif name == "PERSID":
        m.stack.append(PersistentId(arg))
    elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
        m.memo[int(arg)] = m.top()
    elif name == "MEMOIZE":
        m.memo[len(m.memo)] = m.top()
    elif name in ("GET", "BINGET", "LONG_BINGET"):
        if int(arg) not in m.memo:
            raise UnreadablePickle(f"memo {arg} unknown")
        m.stack.append(m.memo[int(arg)])
    elif name == "POP":
        m.pop()
    elif name == "POP_MARK":
        m.pop_to_mark()
    elif name == "DUP":
        m.stack.append(m.top())
    else:  # EXT*, buffers, PERSID variants nobody writes into checkpoints
        raise UnreadablePickle(f"opcode {name} not understood")


def read_pickle(stream: IO[bytes]) -> PickleSummary:
    """Walk one pickle (up to its STOP) from ``stream``; nothing in it is imported or run."""
    m = _Machine()
    try:
        for count, (opcode, arg, _pos) in enumerate(pickletools.genops(stream)):
            if count > MAX_OPS:
                raise UnreadablePickle("too many opcodes")
            if opcode.name == "STOP":
                return PickleSummary(m.pop(), m.globals)
            _step(m, opcode.name, arg)
    except UnreadablePickle:
        raise
    except (ValueError, EOFError, TypeError, KeyError, IndexError, OverflowError) as e:
        # genops raises ValueError on bad opcodes and short reads: damaged or cut off.
        raise UnreadablePickle(str(e)[:200] or type(e).__name__) from None
    raise UnreadablePickle("the pickle has no end (STOP)")


# --- from records to tensor shapes -----------------------------------------------------------

_REBUILD_TENSOR = {"_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3"}
_REBUILD_WRAPPED = {"_rebuild_parameter", "_rebuild_parameter_with_state"}


def tensor_shape(value: object) -> tuple[int, ...] | None:
    """The size of a tensor record, or None when ``value`` is not one."""
    if not isinstance(value, Call) or not isinstance(value.func, Global):
        return None
    func, args = value.func, value.args
    if func.module == "torch._utils" and func.name in _REBUILD_TENSOR and len(args) >= 3:
        size = args[2]  # (storage, storage_offset, size, stride, ...)
        if isinstance(size, tuple) and all(isinstance(d, int) for d in size):
            return size
        return None
    if func.module == "torch._utils" and func.name in _REBUILD_WRAPPED and args:
        return tensor_shape(args[0])  # (tensor, requires_grad, hooks, ...)
    if str(func) == "torch._tensor._rebuild_from_type_v2" and len(args) >= 3:
        inner = args[2]  # (func, type, args, state)
        return tensor_shape(Call(args[0], inner)) if isinstance(inner, tuple) else None
    if str(func) == "torch.nn.parameter.Parameter" and args:
        return tensor_shape(args[0])
    return None


def state_dict_shapes(obj: object) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the tensors in a checkpoint object, as ``load_single_file`` sees them:
    the ``state_dict`` entry when there is one, nested dicts joined with dots."""
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    return dict(_flatten(obj, "", 0))


def _flatten(obj: object, prefix: str, depth: int) -> Iterator[tuple[str, tuple[int, ...]]]:
    if not isinstance(obj, dict) or depth > MAX_NESTING:
        return
    for key, value in obj.items():
        if not isinstance(key, str):
            continue
        shape = tensor_shape(value)
        if shape is not None:
            yield prefix + key, shape
        elif isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.", depth + 1)
