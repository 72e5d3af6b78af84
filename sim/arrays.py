"""The one place that chooses the array library: NumPy on the CPU, CuPy or PyTorch on a GPU.

Array code that should also run on a GPU is written against the namespace this module
hands out (``Arrays.xp``), using only operations of the Python array API standard
(https://data-apis.org/array-api/), which NumPy >= 2, CuPy and PyTorch (through
``array-api-compat``) all provide.  The few things the standard leaves out (random
numbers, moving arrays to and from the host, waiting for the device) are methods of
``Arrays``, so no caller needs to know which library it got.

    from sim.arrays import arrays
    lib = arrays()                      # AICLOUD_ARRAYS, else "numpy"
    lib = arrays("cupy")                # raises ArraysUnavailable (one line) without CuPy and a GPU
    x = lib.xp.zeros((runs, customers), dtype=lib.xp.float32)

Libraries: ``numpy`` (always), ``cupy`` (CuPy and a CUDA device), ``torch`` (PyTorch with a
CUDA device, or its CPU with ``device="cpu"``), and ``strict`` (``array-api-strict``, NumPy
underneath: every call outside the standard fails, which is how the tests keep GPU code
honest).  The model's engine itself runs on NumPy; ``benchmarks/gpu.py`` and
docs/performance.md say what a GPU would gain.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

ENV = "AICLOUD_ARRAYS"
LIBRARIES = ("numpy", "cupy", "torch", "strict")


class ArraysUnavailable(RuntimeError):
    """The chosen array library (or its device) is not there; the message says why, in one line."""


@dataclass(frozen=True)
class Arrays:
    """An array namespace and the few operations the array API standard leaves out.

    ``name``: one of ``LIBRARIES``; ``xp``: the array-API namespace; ``device``: where arrays
    live (``"cpu"`` or a CUDA device).
    """

    name: str
    xp: Any
    device: Any

    def asarray(self, values: Any, dtype: Any = None) -> Any:
        """``values`` (NumPy arrays, lists, scalars) as an array of this library on its device."""
        if self.name == "torch":
            return self.xp.asarray(np.asarray(values), dtype=dtype, device=self.device)
        return self.xp.asarray(values, dtype=dtype)

    def to_numpy(self, array: Any) -> np.ndarray:
        """A NumPy copy on the host (for results, tests and agreement checks)."""
        if self.name == "cupy":
            return array.get()
        if self.name == "torch":
            return array.detach().cpu().numpy()
        return np.asarray(array)

    def generator(self, seed: int) -> Any:
        """A random generator of this library seeded with ``seed`` (one stream per generator)."""
        if self.name == "cupy":
            import cupy

            return cupy.random.default_rng(seed)
        if self.name == "torch":
            import torch

            gen = torch.Generator(device=self.device)
            gen.manual_seed(int(seed))
            return gen
        return np.random.default_rng(seed)

    def uniform(self, gen: Any, shape: tuple[int, ...], dtype: Any = None) -> Any:
        """Uniform numbers on [0, 1) of ``shape`` (float32 unless ``dtype`` says otherwise)."""
        dtype = self.xp.float32 if dtype is None else dtype
        if self.name == "cupy":
            return gen.random(shape, dtype=dtype)
        if self.name == "torch":
            import torch

            return torch.rand(shape, generator=gen, device=self.device, dtype=dtype)
        if self.name == "strict":
            draws = gen.random(shape, dtype=np.float32 if dtype == self.xp.float32 else np.float64)
            return self.xp.asarray(draws)
        return gen.random(shape, dtype=dtype)

    def synchronize(self) -> None:
        """Wait until the device has finished what was queued (for timing)."""
        if self.name == "cupy":
            import cupy

            cupy.cuda.Device().synchronize()
        elif self.name == "torch" and str(self.device).startswith("cuda"):
            import torch

            torch.cuda.synchronize()


def arrays(name: str | None = None, *, device: str | None = None) -> Arrays:
    """The array library ``name`` (default: the ``AICLOUD_ARRAYS`` environment variable, else
    ``"numpy"``).  Raises ``ArraysUnavailable`` with one line when it cannot be used here, and
    ``ValueError`` for a name not in ``LIBRARIES``."""
    name = (name or os.environ.get(ENV) or "numpy").strip().lower()
    if name not in LIBRARIES:
        raise ValueError(f"{ENV}={name!r}: unknown array library; allowed: {', '.join(LIBRARIES)}")
    if name == "numpy":
        return Arrays("numpy", np, "cpu")
    if name == "strict":
        try:
            import array_api_strict
        except ImportError:
            raise ArraysUnavailable("array library 'strict' needs array-api-strict (pip install array-api-strict)") from None
        return Arrays("strict", array_api_strict, "cpu")
    try:
        from array_api_compat import array_namespace  # noqa: F401
    except ImportError:
        raise ArraysUnavailable(f"array library {name!r} needs array-api-compat (pip install 'aicloud-sim[gpu]')") from None
    if name == "cupy":
        try:
            import cupy
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # noqa: BLE001 - ImportError, or CUDA missing / no driver
            raise ArraysUnavailable(f"array library 'cupy' unavailable: {type(exc).__name__}: {exc}".splitlines()[0]) from None
        if count < 1:
            raise ArraysUnavailable("array library 'cupy' unavailable: no CUDA device")
        import array_api_compat.cupy as xp

        return Arrays("cupy", xp, f"cuda:{cupy.cuda.Device().id}")
    try:
        import torch
    except ImportError:
        raise ArraysUnavailable("array library 'torch' needs PyTorch (pip install torch)") from None
    device = device or ("cuda" if torch.cuda.is_available() else None)
    if device is None:
        raise ArraysUnavailable("array library 'torch' unavailable: no CUDA device (device='cpu' runs it on the CPU)")
    import array_api_compat.torch as xp

    return Arrays("torch", xp, torch.device(device))


def gpu() -> Arrays:
    """The first GPU array library that works here (CuPy, then PyTorch); ``ArraysUnavailable``
    saying why each was refused when none does."""
    reasons = []
    for name in ("cupy", "torch"):
        try:
            return arrays(name)
        except ArraysUnavailable as exc:
            reasons.append(str(exc))
    raise ArraysUnavailable("no GPU array library: " + "; ".join(reasons))
