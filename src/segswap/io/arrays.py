"""NumPy ``.npy`` files that hold object arrays (ragged lists), read without running pickled code.

An object array is stored as a pickle, and ``np.load(allow_pickle=True)`` runs whatever callable the
pickle names: a crafted file executes code. Here the pickle may name NumPy's array and dtype
reconstruction and nothing else; the values inside are Python's plain types (lists, ints, strings).
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from ..errors import SegswapError

#: The only callables an object array's pickle may name (numpy.core is numpy._core's old name).
ALLOWED_GLOBALS = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
})


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"it names {module}.{name}, which is not NumPy array data")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # numpy.core, as older NumPy wrote it
            return super().find_class(module, name)


def load_object_array(path: str | os.PathLike) -> np.ndarray:
    """The array in the ``.npy`` file ``path``; object arrays are unpickled through the allow-list above.
    Anything else is a one-line :class:`SegswapError`."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            version = npy_format.read_magic(f)
            read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
            _, _, dtype = read_header(f)
            if not dtype.hasobject:
                f.seek(0)
                return np.load(f, allow_pickle=False)
            array = _ArrayUnpickler(f).load()
    except pickle.UnpicklingError as err:
        raise SegswapError(f"{path}: refused: {err}") from None
    except (OSError, ValueError, EOFError, TypeError, AttributeError) as err:
        raise SegswapError(f"{path}: not a readable .npy file ({err})") from None
    if not isinstance(array, np.ndarray):
        raise SegswapError(f"{path}: holds a {type(array).__name__}, not an array")
    return array
