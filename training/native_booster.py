"""A LightGBM model file read through LightGBM's C library, without the ``lightgbm`` package.

Serving needs three things of the native point booster: its tree dump (explanations are tabulated
per leaf from it), its size, and the leaf each row reaches. Importing the ``lightgbm`` package for
them also imports scikit-learn, pandas, scipy and pyarrow (≈140 MB of private memory in every
server worker, and seconds of start-up); the C library it ships (``lightgbm/lib/lib_lightgbm.so``)
needs none of them. This module finds that library without importing the package and declares the
few entry points it calls (c_api.h of LightGBM 4). Every call's return code is checked; a failure
raises :class:`NativeBoosterError` naming the call and LightGBM's own message.

Training, ONNX export and the tests' reference computations keep using the ``lightgbm`` package.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import sys
import threading
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

_LEAF_INDEX = 2  # C_API_PREDICT_LEAF_INDEX
_FLOAT64 = 1  # C_API_DTYPE_FLOAT64
_IMPORTANCE_SPLIT = 0  # C_API_FEATURE_IMPORTANCE_SPLIT: what Booster.dump_model() asks for by default
_DUMP_BUFFER = 1 << 20  # the first try's buffer, as the Python package's dump_model


class NativeBoosterError(RuntimeError):
    """LightGBM's C library is missing, or one of its calls failed (the message says which, and why)."""


def library_path() -> Path:
    """``lib_lightgbm`` inside the installed ``lightgbm`` wheel, located without importing the package."""
    spec = importlib.util.find_spec("lightgbm")
    if spec is None or not spec.submodule_search_locations:
        raise NativeBoosterError("the lightgbm package is not installed: its C library lib_lightgbm is needed")
    name = {"win32": "lib_lightgbm.dll", "darwin": "lib_lightgbm.dylib"}.get(sys.platform, "lib_lightgbm.so")
    tried: list[str] = []
    for root in spec.submodule_search_locations:
        for folder in ("lib", "bin", "."):  # the wheel's layout first, then those of older builds
            path = Path(root) / folder / name
            if path.is_file():
                return path
            tried.append(str(path))
    raise NativeBoosterError(f"LightGBM's C library not found; looked for {', '.join(tried)}")


_c_int_p = ctypes.POINTER(ctypes.c_int)
_c_int64_p = ctypes.POINTER(ctypes.c_int64)
_handle_p = ctypes.POINTER(ctypes.c_void_p)
_SIGNATURES: dict[str, tuple[Any, ...]] = {
    "LGBM_BoosterCreateFromModelfile": (ctypes.c_char_p, _c_int_p, _handle_p),
    "LGBM_BoosterFree": (ctypes.c_void_p,),
    "LGBM_BoosterGetNumFeature": (ctypes.c_void_p, _c_int_p),
    "LGBM_BoosterNumberOfTotalModel": (ctypes.c_void_p, _c_int_p),
    "LGBM_BoosterDumpModel": (ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int64,
                              _c_int64_p, ctypes.c_char_p),
    "LGBM_BoosterPredictForMatSingleRowFastInit": (ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                                   ctypes.c_int, ctypes.c_int32, ctypes.c_char_p, _handle_p),
    # data and out are raw addresses: the hot loop passes integers, not ctypes objects.
    "LGBM_BoosterPredictForMatSingleRowFast": (ctypes.c_void_p, ctypes.c_void_p, _c_int64_p, ctypes.c_void_p),
    "LGBM_FastConfigFree": (ctypes.c_void_p,),
}


@cache
def _library() -> ctypes.CDLL:
    """The C library with the prototypes used here, on a CDLL object of our own.

    ``ctypes.CDLL`` gives each loader its own function objects, so these prototypes do not change
    those of the ``lightgbm`` package when it is loaded in the same process (tests, training).
    """
    path = library_path()
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as e:
        raise NativeBoosterError(f"LightGBM's C library {path} does not load: {e}") from None
    try:
        for name, argtypes in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = list(argtypes), ctypes.c_int
        lib.LGBM_GetLastError.argtypes, lib.LGBM_GetLastError.restype = [], ctypes.c_char_p
    except AttributeError as e:
        raise NativeBoosterError(f"{path} lacks an entry point this code calls ({e}); LightGBM ≥ 4 is needed") from None
    return lib


def _last_error(lib: ctypes.CDLL) -> str:
    message = lib.LGBM_GetLastError()
    return message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)


def _check(lib: ctypes.CDLL, rc: int, what: str) -> None:
    if rc != 0:
        raise NativeBoosterError(f"{what} failed: {_last_error(lib)}")


class NativeBooster:
    """One LightGBM model file loaded in the C library (``LGBM_BoosterCreateFromModelfile``).

    ``n_features`` and ``n_trees`` (all trees, as ``Booster.num_trees()``), the tree dump as a
    dict, and :class:`LeafIndex` lookups over it. The handle is freed by :meth:`close` or when the
    object is collected.
    """

    def __init__(self, model_file: str | Path) -> None:
        self.model_file = Path(model_file)
        self._lib = _library()
        self._handle = ctypes.c_void_p()
        if not self.model_file.is_file():  # the C library's own message for this is "Could not open"
            raise NativeBoosterError(f"model file {self.model_file} is missing or not a file")
        iterations = ctypes.c_int(0)
        self._call("LGBM_BoosterCreateFromModelfile", str(self.model_file).encode("utf-8"),
                   ctypes.byref(iterations), ctypes.byref(self._handle))
        self.n_iterations = iterations.value
        self.n_features = self._int("LGBM_BoosterGetNumFeature")
        self.n_trees = self._int("LGBM_BoosterNumberOfTotalModel")

    def _call(self, name: str, *args: Any) -> None:
        _check(self._lib, getattr(self._lib, name)(*args), f"{name} ({self.model_file})")

    def _int(self, name: str) -> int:
        self._require_open(name)
        out = ctypes.c_int(0)
        self._call(name, self._handle, ctypes.byref(out))
        return out.value

    def _require_open(self, what: str) -> None:
        if not self._handle:
            raise NativeBoosterError(f"{what}: the booster of {self.model_file} is closed")

    def dump_model(self) -> dict[str, Any]:
        """The model as ``Booster.dump_model()`` returns it (all iterations, split importances).

        Without the ``pandas_categorical`` key the Python package adds: it is not in the C dump.
        """
        self._require_open("LGBM_BoosterDumpModel")
        size = _DUMP_BUFFER
        needed = ctypes.c_int64(0)
        for _ in range(2):  # the first call reports the length needed if its buffer was too small
            buffer = ctypes.create_string_buffer(size)
            self._call("LGBM_BoosterDumpModel", self._handle, 0, 0, _IMPORTANCE_SPLIT, size,
                       ctypes.byref(needed), buffer)
            if needed.value <= size:
                return json.loads(buffer.value.decode("utf-8"))
            size = needed.value
        raise NativeBoosterError(f"LGBM_BoosterDumpModel ({self.model_file}): the dump grew from one call to the "
                                 f"next ({size} bytes, then {needed.value})")

    def leaf_index(self, n_trees: int | None = None) -> LeafIndex:
        """A :class:`LeafIndex` over the first ``n_trees`` trees (default: all)."""
        return LeafIndex(self, self.n_trees if n_trees is None else n_trees)

    def close(self) -> None:
        """Free the C booster; later calls raise :class:`NativeBoosterError`."""
        if self._handle:
            handle, self._handle = self._handle, ctypes.c_void_p()
            self._call("LGBM_BoosterFree", handle)

    def __del__(self) -> None:
        # At interpreter exit the library, and this module's globals, may be gone before this
        # object: a bare try needs neither.
        try:
            self.close()
        except Exception:
            pass


class LeafIndex:
    """The leaf each row reaches in each tree of a booster, through LightGBM's single-row C API.

    ``Booster.predict(pred_leaf=True)`` builds a predictor per call (≈60 µs for 3 rows); the
    single-row "fast" handle is built once and answers a row in a few µs. Calls are serialised by a
    lock (the handle's buffers are shared). Holds its booster: the fast handle points into it.
    """

    def __init__(self, booster: NativeBooster, n_trees: int) -> None:
        booster._require_open("LGBM_BoosterPredictForMatSingleRowFastInit")
        self.booster = booster
        self.n_trees = n_trees
        self.n_features = booster.n_features
        self._lock = threading.Lock()
        self._lib = booster._lib
        self._fast = ctypes.c_void_p()
        booster._call("LGBM_BoosterPredictForMatSingleRowFastInit", booster._handle, _LEAF_INDEX, 0, n_trees,
                      _FLOAT64, self.n_features, b"num_threads=1", ctypes.byref(self._fast))
        self._predict = self._lib.LGBM_BoosterPredictForMatSingleRowFast
        self._out_len = ctypes.byref(ctypes.c_int64())

    def __call__(self, X: np.ndarray, offsets: np.ndarray | None = None) -> np.ndarray:
        """(n, n_trees) int64 leaf indices for float64 rows, plus ``offsets`` (float, per tree) if given."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X: expected (n, {self.n_features}) rows, got shape {X.shape}")
        out = np.empty((len(X), self.n_trees), dtype=np.float64)
        x0, out0 = X.ctypes.data, out.ctypes.data
        row_bytes, out_bytes = X.shape[1] * 8, self.n_trees * 8
        predict, out_len = self._predict, self._out_len
        with self._lock:
            fast = self._fast
            if not fast:
                raise NativeBoosterError("LeafIndex is closed")
            for i in range(len(X)):
                _check(self._lib, predict(fast, x0 + i * row_bytes, out_len, out0 + i * out_bytes),
                       "LightGBM leaf prediction")
        if offsets is not None:
            out += offsets  # small integers: exact in float64
        return out.astype(np.int64)

    def close(self) -> None:
        """Free the fast handle (the booster stays open)."""
        with self._lock:
            if self._fast:
                fast, self._fast = self._fast, ctypes.c_void_p()
                _check(self._lib, self._lib.LGBM_FastConfigFree(fast), "LGBM_FastConfigFree")

    def __del__(self) -> None:
        # At interpreter exit the library, and this module's globals, may be gone before this
        # object: a bare try needs neither.
        try:
            self.close()
        except Exception:
            pass
