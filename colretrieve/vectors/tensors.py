"""Numpy arrays seen as torch tensors without a copy."""

from __future__ import annotations

import warnings

import numpy as np
import torch


def read_only_tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor over a read-only array (a memory map's rows) without a copy; only ever read."""
    with warnings.catch_warnings():  # torch warns that it cannot mark the tensor read-only
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(np.asarray(array))
