"""Stored forms of page vectors: the bytes MaxSim reads per page, traded against precision.

- float16: 2 bytes a number; scoring converts to float32. The default.
- int8: one byte a number plus a float32 scale per vector (symmetric, scale = max |x| / 127):
  about half of float16, scores within ~1%.
- binary: one bit a number (its sign), decoded to +-1/sqrt(dim) so vectors stay unit length:
  1/16 of float16; a coarse first pass whose best pages are rescored from float16.

Every form encodes to a (n, row_bytes) uint8 array, so one file layout serves all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

FORMATS = ("float16", "int8", "binary")


@dataclass(frozen=True)
class VectorFormat:
    """How `dim`-wide vectors are stored as bytes and read back as float32."""

    name: str
    dim: int

    def __post_init__(self) -> None:
        if self.name not in FORMATS:
            raise ValueError(f"unknown vector format {self.name!r}; choose one of {', '.join(FORMATS)}")

    @property
    def row_bytes(self) -> int:
        return {"float16": 2 * self.dim, "int8": self.dim + 4, "binary": -(-self.dim // 8)}[self.name]

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        """(n, dim) floats to (n, row_bytes) uint8."""
        x = np.asarray(vectors, dtype=np.float32)
        if self.name == "float16":
            return x.astype(np.float16).view(np.uint8).reshape(len(x), -1)
        if self.name == "binary":
            return np.packbits(x > 0, axis=1)
        scale = np.abs(x).max(axis=1, keepdims=True) / 127
        scale[scale == 0] = 1.0
        codes = np.rint(x / scale).astype(np.int8)
        return np.concatenate([codes.view(np.uint8), scale.astype(np.float32).view(np.uint8)], axis=1)

    def decode(self, rows: np.ndarray) -> np.ndarray:
        """(n, row_bytes) uint8 back to vectors: a float16 view for float16 (MaxSim converts it
        as it reads), float32 otherwise."""
        if self.name == "float16":
            return rows.view(np.float16)
        if self.name == "binary":  # one gather of 8 floats per byte: 5x unpackbits + arithmetic
            return np.take(self._byte_table, rows, axis=0).reshape(len(rows), -1)[:, : self.dim]
        import torch  # loaded where int8 pages are read, not by every import of the forms

        from .tensors import read_only_tensor

        scale = read_only_tensor(np.ascontiguousarray(rows[:, self.dim:]).view(np.float32))
        codes = read_only_tensor(np.ascontiguousarray(rows[:, : self.dim]).view(np.int8))
        return codes.to(torch.float32).mul_(scale).numpy()  # torch converts on all cores

    @cached_property
    def _byte_table(self) -> np.ndarray:
        """(256, 8): the eight +-1/sqrt(dim) values each byte of sign bits stands for."""
        bits = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).astype(np.float32)
        return (2 * bits - 1) / np.float32(np.sqrt(self.dim))
