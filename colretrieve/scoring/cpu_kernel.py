"""The fused AVX-512 MaxSim kernel (`_cpu_maxsim.cpp`), for pages in CPU memory.

It reads each page where it lies (rows of the memory-mapped vector file, or a packed array),
converts float16 in registers and keeps every running maximum in cache, so a page costs one
read of its stored bytes. CPUs without AVX-512, and checkouts where the extension was not
built, score on the portable blocked-matmul path in `maxsim.py`; `name()` says which runs.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, cast

import numpy as np

from ..vectors.layout import PANEL, PanelPage

if TYPE_CHECKING:
    import torch


class _Kernel(Protocol):
    """The compiled extension's functions (`_cpu_maxsim.cpp`, built by setup.py): pointers to
    C-contiguous arrays; out[t, p] is the max over page p's vectors of q[t] . v."""

    def supported(self) -> bool: ...

    def token_maxima(self, q: int, n_tokens: int, dim: int, page_ptrs: int, page_lens: int, n_pages: int,
                     f16: bool, panels: bool, out: int, out_stride: int, threads: int) -> None: ...


def _load() -> _Kernel | None:
    try:
        return cast(_Kernel, importlib.import_module(f"{__package__}._cpu_maxsim"))
    except ImportError:  # not built (a source tree used without `pip install -e .`)
        return None


_cpu_maxsim = _load()

#: Whether each accepted dtype is float16 (torch's dtypes are matched by name: torch is not
#: imported for a query that scores numpy pages).
DTYPES = {"torch.float16": True, "torch.float32": False, "float16": True, "float32": False}


def available() -> bool:
    """Whether the kernel is built and this CPU can run it."""
    return _cpu_maxsim is not None and _cpu_maxsim.supported()


def name() -> str:
    """Which CPU MaxSim path scores here, for benchmark tables and `stats`."""
    if available():
        return "avx512-fused"
    return "torch-blocked (" + ("no AVX-512 on this CPU" if _cpu_maxsim else "kernel not built") + ")"


def accepts(pages: Sequence[np.ndarray | torch.Tensor | PanelPage], dim: int) -> bool:
    """Whether these pages can go to the kernel: one float16/float32 dtype, C-contiguous rows
    of `dim` numbers, on the CPU, none empty; or all float16 pages in the panel layout."""
    if not available() or not len(pages):
        return False
    if isinstance(pages[0], PanelPage):
        return all(isinstance(p, PanelPage) and p.panels.dtype == np.float16 and p.panels.shape[1:] == (dim, PANEL)
                   and len(p) > 0 and p.panels.flags.c_contiguous for p in pages)
    dtype = pages[0].dtype
    return str(dtype) in DTYPES and all(
        not isinstance(p, PanelPage) and p.dtype == dtype and p.ndim == 2 and p.shape[1] == dim and len(p) > 0
        and _contiguous(p) for p in pages)


def packed_addresses(flat: torch.Tensor, offsets: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(address of each page's first vector, vectors in each page) of a packed (flat, offsets)."""
    row_bytes = flat.shape[1] * flat.element_size()
    bounds = offsets.cpu().numpy().astype(np.int64)
    return flat.data_ptr() + bounds[:-1] * row_bytes, np.diff(bounds)


def page_addresses(pages: Sequence[np.ndarray | torch.Tensor | PanelPage]) -> tuple[np.ndarray, np.ndarray]:
    """(address, length) of each page, for pages given one array each."""
    addresses = [p.__array_interface__["data"][0] if isinstance(p, np.ndarray) else
                 p.panels.__array_interface__["data"][0] if isinstance(p, PanelPage) else p.data_ptr() for p in pages]
    return np.array(addresses, dtype=np.int64), np.array([len(p) for p in pages], dtype=np.int64)


def token_maxima(q: np.ndarray, addresses: np.ndarray, lengths: np.ndarray, dtype: object,
                 panels: bool = False) -> np.ndarray:
    """(n_tokens, n_pages) float32: each query token's best similarity on each page.

    `addresses` and `lengths` (int64) locate each page's rows of `dtype` (float16 or float32),
    q.shape[1] numbers a row, or with `panels` its float16 panels (layout.py); the caller
    keeps those arrays alive for the call. Runs on `threads()` threads, with the GIL released.
    """
    q = np.ascontiguousarray(q, dtype=np.float32)
    addresses = np.ascontiguousarray(addresses, dtype=np.int64)
    lengths = np.ascontiguousarray(lengths, dtype=np.int64)
    out = np.empty((len(q), len(lengths)), dtype=np.float32)
    if len(q) and len(lengths):
        assert _cpu_maxsim is not None, "the CPU MaxSim kernel is not built"
        _cpu_maxsim.token_maxima(q.ctypes.data, len(q), q.shape[1], addresses.ctypes.data, lengths.ctypes.data,
                                 len(lengths), DTYPES[str(dtype)], panels, out.ctypes.data, out.shape[1],
                                 threads())
    return out


def threads() -> int:
    """torch's thread count where torch is loaded (one setting for every CPU path), else the
    cores this process may run on: a query that needs no torch does not import it for this."""
    # another thread may be importing torch right now (an ingest beside a service's searches):
    # a module still initialising has no get_num_threads yet
    count = getattr(sys.modules.get("torch"), "get_num_threads", None)
    if count is not None:
        return int(count())
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _contiguous(page: np.ndarray | torch.Tensor) -> bool:
    if isinstance(page, np.ndarray):
        return page.flags.c_contiguous
    return page.is_contiguous() and not page.is_cuda
