"""Sparse vectors: term ids and their weights, the form corpus statistics are stored in."""

from __future__ import annotations

#: (term ids, weights), ids unique; what a store keeps under a sparse vector's name.
Sparse = tuple[list[int], list[float]]
