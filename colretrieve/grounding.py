"""A hit's grounding: where on its page the query found what it matched, as heatmaps over the page.

Every page vector keeps its patch-grid cell, for the text default and the VLM encoders alike,
so one drawing serves them all. Two maps:

- `contribution_map`: the MaxSim score split over patches. Each query token's best page
  vector credits its similarity to its own cell; the cells add up to the score (less any
  best matches on vectors without a cell, such as a VLM's prompt tokens).
- `token_maps`: for each query token, its similarity to every patch (the best vector in each
  cell), clipped at zero: where each word of the query looks, not only where it landed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from .catalog import point_id
from .documents.render import fitted_size
from .errors import ColretrieveError
from .models import Models
from .search import Hit
from .storage import Store

#: Most pixels a map is drawn with: the overlay holds several float copies of the page.
MAP_PIXELS = 4_000_000


def _sims(query: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    return query.astype(np.float32) @ vectors.astype(np.float32).T


def contribution_map(query: np.ndarray, vectors: np.ndarray, cells: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(rows, cols) share of the MaxSim score each patch earned."""
    sims = _sims(query, vectors)
    best = sims.argmax(axis=1)
    heat = np.zeros(grid[0] * grid[1], dtype=np.float32)
    placed = cells[best] >= 0
    np.add.at(heat, cells[best][placed], sims[np.arange(len(query)), best][placed])
    return heat.reshape(grid)


def token_maps(query: np.ndarray, vectors: np.ndarray, cells: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(n_tokens, rows, cols) each query token's best similarity within each patch, at least 0."""
    sims = np.clip(_sims(query, vectors), 0, None)
    heat = np.zeros((len(query), grid[0] * grid[1]), dtype=np.float32)
    placed = cells >= 0
    for t in range(len(query)):
        np.maximum.at(heat[t], cells[placed], sims[t, placed])
    return heat.reshape(len(query), *grid)


def overlay(page: Image.Image, heat: np.ndarray) -> Image.Image:
    """The page with `heat` drawn over it: clear where cold, yellow-red where hot."""
    peak = float(heat.max())
    level = heat / peak if peak > 0 else heat
    small = Image.fromarray((level * 255).astype(np.uint8), mode="L")
    level = np.asarray(small.resize(page.size, Image.Resampling.BILINEAR), dtype=np.float32) / 255
    color = np.stack([np.clip(3 * level, 0, 1), np.clip(3 * level - 1, 0, 1), np.clip(3 * level - 2, 0, 1)], -1)
    alpha = (0.65 * np.sqrt(level))[..., None]  # faint heat stays visible over dark print
    base = np.asarray(page.convert("RGB"), dtype=np.float32) / 255
    mixed = base * (1 - alpha) + color * alpha
    return Image.fromarray((mixed * 255).round().astype(np.uint8), mode="RGB")


def write_maps(page: Image.Image, query: np.ndarray, vectors: np.ndarray, cells: np.ndarray,
               grid: tuple[int, int], stem: Path, per_token: bool = False) -> list[Path]:
    """`stem`.png (the contribution map) and, with `per_token`, `stem`-tNN.png for each token."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    if page.width * page.height > MAP_PIXELS:
        page = page.resize(fitted_size(page.width, page.height, MAP_PIXELS))
    written = [stem.with_name(stem.name + ".png")]
    overlay(page, contribution_map(query, vectors, cells, grid)).save(written[0])
    if per_token:
        for t, heat in enumerate(token_maps(query, vectors, cells, grid)):
            written.append(stem.with_name(f"{stem.name}-t{t:02d}.png"))
            overlay(page, heat).save(written[-1])
    return written


def write_crops(hits: Sequence[Hit], directory: Path) -> list[Path]:
    """Each hit's regions cut from its page, `NN-<file>-pPAGE-rR.png` in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for hit in hits:
        if not hit.regions:
            continue
        page = hit.image()
        for number, region in enumerate(hit.regions, 1):
            written.append(directory / f"{hit.rank:02d}-{Path(hit.path).stem}-p{hit.page}-r{number}.png")
            hit.crop(region, page=page).save(written[-1])
    return written


def hit_maps(store: Store, models: Models, text: str, hits: Sequence[Hit], directory: Path,
             per_token: bool = False, page_id: Callable[[str, int], str] = point_id) -> list[Path]:
    """A map per hit, `NN-<file>-pPAGE.png` in `directory` (see `Index.similarity_maps`);
    `page_id` names a hit's page in `store` (a tenant's view keeps ids of its own)."""
    query = models.encoder.encode_queries([text])[0]
    stored = store.pages([page_id(h.doc_id, h.page) for h in hits], fields=("cells", "grid"))
    written: list[Path] = []
    for hit, page in zip(hits, stored):
        grid = tuple(page.payload.get("grid") or models.encoder.grid)
        if not grid[0] * grid[1]:  # a backbone whose token layout colretrieve does not know
            raise ColretrieveError(f"{models.encoder.name} places no vector on a page grid: it has no maps")
        stem = directory / f"{hit.rank:02d}-{Path(hit.path).stem}-p{hit.page}"
        written += write_maps(hit.image(), query, page.rows(), np.asarray(page.payload["cells"], dtype=np.int64),
                              (grid[0], grid[1]), stem, per_token)
    return written
