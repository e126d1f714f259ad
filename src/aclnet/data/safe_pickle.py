"""A restricted unpickler for untrusted files: containers, numbers, strings and checked NumPy arrays only,
every declared size checked against the bytes present before anything is allocated."""

from __future__ import annotations

import io
import math
import pickle
import pickletools
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from aclnet.errors import InputError
from aclnet.fileio import require_readable

# What annotation files refer to (PYSKL / mmaction2 pickles of protocol 2 to 5, NumPy 1 and 2):
# arrays are `_reconstruct(ndarray, (0,), b'b')` then BUILD with (version, shape, dtype, fortran, bytes),
# or `_frombuffer(bytes, dtype, shape, order)` at protocol 5; scalars are `scalar(dtype, bytes)`; dtypes
# are `dtype(code, align, copy)` then BUILD with their state; protocol 2 encodes bytes as
# `_codecs.encode(text, 'latin1')`. Each is rebuilt by a function here that checks its arguments first;
# NumPy's own constructors (which accept buffers, strides and object dtypes) are never reachable.
_NUMPY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray")
_NUMERIC_MODULES = ("numpy.core.numeric", "numpy._core.numeric")
# Plain number dtypes only (no object, string, void or structured dtypes).
_DTYPE_CODES = ("b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8")
_BYTE_ORDERS = frozenset({"<", ">", "|", "="})
_DTYPES: dict[Any, np.dtype] = {
    **{code: np.dtype(code) for code in _DTYPE_CODES},
    **{(code, order): np.dtype(code) if order in "|=" else np.dtype(code).newbyteorder(order)
       for code in _DTYPE_CODES for order in _BYTE_ORDERS},
}
_MAX_DIMS = 32
# A memo index may run ahead of the number of values stored so far by this much (picklers number them
# in order); the C unpickler allocates memo slots up to the index, so a larger one is a memory bomb.
_MEMO_SLACK = 1 << 16
_REAL_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]
_REAL_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]
_REAL_SCALAR = np.float32(0).__reduce__()[0]


class UnsafePickleError(InputError):
    """The pickle refers to something other than containers, numbers, strings and arrays."""


class _PickleContentError(Exception):
    """A global the unpickler allows was given arguments that no annotation file uses."""


class _Ndarray:
    """Stands for `numpy.ndarray`, which may only be the first argument of `_reconstruct`."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise _PickleContentError("numpy.ndarray is called directly (only numpy's _reconstruct may use it)")


_NDARRAY = _Ndarray()


class _DtypeToken:
    """A checked NumPy number dtype, rebuilt from `dtype(code, align, copy)` and its state."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, code: Any, align: Any = False, copy: Any = True, *rest: Any) -> None:
        dtype = _DTYPES.get(code) if type(code) is str and not rest else None
        if dtype is None:
            shown = code if isinstance(code, str) and len(code) < 20 else type(code).__name__
            raise _PickleContentError(f"dtype {shown!r} is not a number type (allowed: {', '.join(_DTYPE_CODES)})")
        self._code = code
        self.dtype = dtype
        self._set = False

    def __setstate__(self, state: Any) -> None:
        if self._set:
            raise _PickleContentError("a dtype's state is set twice")
        self._set = True
        if not (type(state) is tuple and len(state) in (8, 9) and state[0] in (3, 4)):
            raise _PickleContentError("a dtype state is not (3, byteorder, None, None, None, -1, -1, flags)")
        order, subarray, names, fields = state[1:5]
        if order not in _BYTE_ORDERS or subarray is not None or names is not None or fields is not None:
            raise _PickleContentError("a dtype state describes a structured, sub-array or unknown byte-order dtype")
        self.dtype = _DTYPES[self._code, order]


def _checked_dtype(dtype: Any) -> np.dtype:
    if type(dtype) is not _DtypeToken:
        raise _PickleContentError(f"an array's dtype is a {type(dtype).__name__}, not a dtype")
    return dtype.dtype


def _checked_shape(shape: Any) -> tuple[int, ...]:
    if not (type(shape) is tuple and len(shape) <= _MAX_DIMS and set(map(type, shape)) <= {int}):
        raise _PickleContentError("an array's shape is not a tuple of sizes")
    if min(shape, default=0) < 0:
        raise _PickleContentError("an array's shape is not a tuple of sizes >= 0")
    return shape


def _check_size(shape: tuple[int, ...], dtype: np.dtype, data: Any) -> None:
    """An array's shape x itemsize must equal the length of its data bytes."""
    if type(data) is not bytes and type(data) is not bytearray:
        raise _PickleContentError(f"an array's data is a {type(data).__name__}, not bytes")
    needed = math.prod(shape) * dtype.itemsize
    if needed != len(data):
        raise _PickleContentError(
            f"an array declares shape {shape} of {dtype} ({needed} bytes) but holds {len(data)} bytes of data"
        )


class _ArrayToken:
    """An array under construction: `_reconstruct` makes it, BUILD gives it checked data."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self) -> None:
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        if self.array is not None:
            raise _PickleContentError("an array's state is set twice")
        if isinstance(state, tuple) and len(state) == 5 and state[0] == 1:
            state = state[1:]
        if not (isinstance(state, tuple) and len(state) == 4):
            raise _PickleContentError("an array state is not (1, shape, dtype, is_fortran, data)")
        shape, dtype, fortran, data = state
        shape, dtype = _checked_shape(shape), _checked_dtype(dtype)
        if not isinstance(fortran, (bool, int)):
            raise _PickleContentError("an array's order flag is not a boolean")
        _check_size(shape, dtype, data)
        array = _REAL_RECONSTRUCT(np.ndarray, (0,), b"b")
        array.__setstate__((1, shape, dtype, bool(fortran), data if type(data) is bytes else bytes(data)))
        self.array = array


def _reconstruct(subtype: Any, shape: Any, typecode: Any) -> _ArrayToken:
    if subtype is not _NDARRAY or shape != (0,) or typecode != b"b":
        raise _PickleContentError("numpy's _reconstruct is called with arguments other than (ndarray, (0,), b'b')")
    return _ArrayToken()


def _frombuffer(data: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    shape, dtype = _checked_shape(shape), _checked_dtype(dtype)
    if order not in ("C", "F"):
        raise _PickleContentError("an array's order is not 'C' or 'F'")
    _check_size(shape, dtype, data)
    return _REAL_FROMBUFFER(bytearray(data), dtype, shape, order)


def _scalar(dtype: Any, data: Any = None) -> Any:
    dtype = _checked_dtype(dtype)
    _check_size((), dtype, data)
    return _REAL_SCALAR(dtype, bytes(data))


def _bytes(*args: Any) -> bytes:
    if args:  # bytes(n) would allocate n bytes
        raise _PickleContentError("bytes is called with arguments (protocol 2 writes only an empty bytes() so)")
    return b""


def _bytearray(*args: Any) -> bytearray:
    if args and (len(args) > 1 or type(args[0]) is not bytes):
        raise _PickleContentError("bytearray is called with something other than bytes")
    return bytearray(*args)


def _encode(text: Any, encoding: Any = "utf-8", errors: Any = "strict") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1") or errors != "strict":
        raise _PickleContentError("codecs.encode is used for something other than bytes of protocol 2 (latin1)")
    return text.encode("latin1")


_SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _DtypeToken,
    **{(m, "_reconstruct"): _reconstruct for m in _NUMPY_MODULES},
    **{(m, "scalar"): _scalar for m in _NUMPY_MODULES},
    **{(m, "_frombuffer"): _frombuffer for m in _NUMERIC_MODULES},
    ("collections", "OrderedDict"): OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex,
    ("builtins", "bytes"): _bytes,
    ("builtins", "bytearray"): _bytearray,
    ("codecs", "encode"): _encode,
    ("_codecs", "encode"): _encode,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, source: str) -> None:
        super().__init__(file)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        # Python 3 writes builtins as '__builtin__' at protocols < 3 (what fix_imports undoes).
        found = _SAFE_GLOBALS.get(("builtins" if module == "__builtin__" else module, name))
        if found is None:
            raise UnsafePickleError(
                f"{self._source}: refused to load: the pickle refers to '{module}.{name}'; only "
                "containers, numbers, strings and NumPy arrays are allowed in annotation files"
            )
        return found


def _opcode_table() -> list[int | None]:
    """Per opcode byte: how `check_pickle_opcodes` skips its argument.

    None: unknown opcode; 0: no argument; n > 0: n bytes; -1: a line; -2, -3, -11, -4: a length of 1,
    4 (signed), 4 (unsigned) or 8 bytes then that many bytes; -5: two lines; -6: STOP; -7: MEMOIZE;
    -8: BINPUT; -9: LONG_BINPUT; -10: PUT.
    """
    table: list[int | None] = [None] * 256
    for op in pickletools.opcodes:
        n = op.arg.n if op.arg is not None else 0
        table[ord(op.code)] = n if n >= 0 else {
            pickletools.UP_TO_NEWLINE: -1, pickletools.TAKEN_FROM_ARGUMENT1: -2,
            pickletools.TAKEN_FROM_ARGUMENT4: -3, pickletools.TAKEN_FROM_ARGUMENT4U: -11,
            pickletools.TAKEN_FROM_ARGUMENT8U: -4,
        }[n]
    for code in "ci":  # GLOBAL, INST: two lines
        table[ord(code)] = -5
    table[ord(".")] = -6  # STOP
    for code in ("\x94", "q"):  # MEMOIZE, BINPUT (index < 256): store a value
        table[ord(code)] = -7 if code == "\x94" else -8
    table[ord("r")] = -9  # LONG_BINPUT
    table[ord("p")] = -10  # PUT
    return table


_OPCODES = _opcode_table()


def check_pickle_opcodes(data: bytes, source: str) -> None:
    """Refuse a pickle whose declared sizes its bytes cannot hold, before any unpickling.

    Every length-prefixed argument must fit in the bytes that follow it, and a memo index may not run
    ahead of the values stored so far (the C unpickler allocates up to the index: a 12-byte file could
    otherwise take gigabytes). The pickle must end with STOP.
    """
    table, end, pos, stores = _OPCODES, len(data), 0, 0
    from_bytes = int.from_bytes
    try:
        while pos < end:
            kind = table[data[pos]]
            pos += 1
            if kind == 0:
                continue
            if kind == -7:
                stores += 1
                continue
            if kind is None:
                opcode = data[pos - 1]
                raise InputError(f"{source}: not an annotation pickle: unknown opcode {opcode:#04x} at byte {pos - 1}")
            if kind > 0:
                pos += kind
                continue
            if kind == -2:
                length, pos = data[pos], pos + 1
            elif kind == -3:
                length, pos = from_bytes(data[pos : pos + 4], "little", signed=True), pos + 4
            elif kind == -11:
                length, pos = from_bytes(data[pos : pos + 4], "little"), pos + 4
            elif kind == -4:
                length, pos = from_bytes(data[pos : pos + 8], "little"), pos + 8
            elif kind == -8:
                stores, pos = stores + 1, pos + 1
                continue
            elif kind == -9:
                index, pos = from_bytes(data[pos : pos + 4], "little"), pos + 4
                _check_memo_index(index, stores, pos, source)
                stores += 1
                continue
            elif kind in (-1, -10):
                line_end = data.index(b"\n", pos)
                if kind == -10:
                    _check_memo_index(int(data[pos:line_end]), stores, pos, source)
                    stores += 1
                pos = line_end + 1
                continue
            elif kind == -5:
                pos = data.index(b"\n", data.index(b"\n", pos) + 1) + 1
                continue
            else:  # STOP
                return
            if length < 0 or length > end - pos:
                raise InputError(
                    f"{source}: not a readable annotation pickle: byte {pos} declares {length} bytes of data "
                    f"but only {max(end - pos, 0)} follow (truncated or corrupt)"
                )
            pos += length
    except IndexError:  # a length byte beyond the end
        pass
    except ValueError as exc:  # no newline ending a text argument, or a PUT index that is not a number
        raise InputError(f"{source}: not a readable annotation pickle (truncated or corrupt): {exc}") from None
    raise InputError(f"{source}: not a readable annotation pickle: it ends without STOP (truncated)")


def _check_memo_index(index: int, stores: int, pos: int, source: str) -> None:
    if index > stores + _MEMO_SLACK:
        raise InputError(
            f"{source}: not a readable annotation pickle: byte {pos} stores memo entry {index} after only "
            f"{stores} values (corrupt or crafted)"
        )


def _resolve_tokens(root: Any) -> Any:
    """Replace the array and dtype tokens of an unpickled structure by NumPy arrays and dtypes.

    Iterative (structures may nest deeper than Python's recursion limit); lists and dicts are updated
    in place, tuples holding a token are rebuilt; shared objects are visited once, cycles left alone.
    """
    visited: set[int] = set()
    replaced: dict[int, Any] = {}  # tokens and rebuilt tuples, by the id of what they replace
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if not expanded:
            key = id(node)
            if key in visited:
                continue
            visited.add(key)
            if isinstance(node, _ArrayToken):
                if node.array is None:
                    raise _PickleContentError("an array is rebuilt without its data")
                replaced[key] = node.array
            elif isinstance(node, _DtypeToken):
                replaced[key] = node.dtype
            else:
                stack.append((node, True))
                children = node.values() if isinstance(node, dict) else node
                stack.extend((c, False) for c in children if isinstance(c, _CONTAINERS) and id(c) not in visited)
            continue
        if isinstance(node, list):
            for i, child in enumerate(node):
                new = replaced.get(id(child), child)
                if new is not child:
                    node[i] = new
        elif isinstance(node, dict):
            for k, child in node.items():
                new = replaced.get(id(child), child)
                if new is not child:
                    node[k] = new
        else:
            items = tuple(replaced.get(id(c), c) for c in node)
            if any(a is not b for a, b in zip(items, node)):
                replaced[id(node)] = items
    return replaced.get(id(root), root)


_CONTAINERS = (list, dict, tuple, _ArrayToken, _DtypeToken)


def safe_load_pickle(path: str | Path) -> Any:
    """Unpickle `path` admitting only containers, numbers, strings and checked NumPy arrays.

    Arrays must be plain number arrays whose data bytes are exactly shape x itemsize; every declared
    size is checked against the bytes present before anything is allocated for it.
    """
    path = require_readable(Path(path))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from exc
    check_pickle_opcodes(data, str(path))
    try:
        return _resolve_tokens(_RestrictedUnpickler(io.BytesIO(data), str(path)).load())
    except UnsafePickleError:
        raise
    except _PickleContentError as exc:
        raise UnsafePickleError(f"{path}: refused to load: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            OverflowError, MemoryError, RecursionError) as exc:
        raise InputError(f"{path}: not a readable annotation pickle (truncated or corrupt): {exc}") from None
