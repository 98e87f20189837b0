"""Where on its page a hit earned its score, as boxes: `Hit.regions`.

MaxSim credits each query token's similarity to its best page vector, and every page vector
keeps its patch-grid cell (every encoder: the text default places a word's tokens at its word,
a VLM its patches). The credited cells are merged into regions: cells at most REGION_GAP empty
cells apart belong together (a phrase's words, a table row's cells). A region's box is snapped
to the words whose centres fall in its cells, where the page has words (text layer or OCR);
its cells that hold no word (a figure's) add their own. Regions are ranked by their share of
the credit, and carry the text of their words: what a RAG pipeline quotes.

The page's word boxes are stored with it at ingest (`pack_boxes`, 8 bytes a word); pages
stored before have regions of cells, without text.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .page import Word, word_cells

#: Regions a hit carries at most, the best first.
MAX_REGIONS = 5
#: Empty cells a region bridges (2 of a 32 x 32 grid: ~6% of the page). Measured on the dev
#: answer boxes (benchmarks/bench_regions.py): 1 gives regions half the size that overlap the
#: answer less often (42% against 51%); 3 and more grow regions past the answers' own size.
REGION_GAP = 2
#: The payload field of a page's word boxes (`pack_boxes`).
BOXES = "boxes"
_SCALE = 65535  # a box edge as a 16-bit fraction of the page: 1/65535 is far below a dot


@dataclass(frozen=True)
class Region:
    """A box on the page and what it earned. `box` is normalised to [0, 1] of the page, origin
    top-left like the image; `points` is the same box in PDF points (1/72 inch)."""

    box: tuple[float, float, float, float]
    points: tuple[float, float, float, float]
    #: The region's part of the MaxSim score (its cells' credit over all credit).
    share: float
    #: The words inside, in reading order ("" where the page has no words there).
    text: str

    def __post_init__(self) -> None:  # rebuilt from JSON, boxes arrive as lists
        object.__setattr__(self, "box", tuple(self.box))
        object.__setattr__(self, "points", tuple(self.points))


def pack_boxes(words: Sequence[Word]) -> str:
    """The words' boxes, as stored with the page (their texts are the page text's words)."""
    edges = np.array([(w.x0, w.y0, w.x1, w.y1) for w in words], dtype=np.float64).reshape(-1, 4)
    return base64.b64encode(np.round(np.clip(edges, 0, 1) * _SCALE).astype("<u2").tobytes()).decode("ascii")


def unpack_words(text: str, boxes: str | None) -> list[Word]:
    """The page's words with their boxes; none where the boxes are missing or do not match the text."""
    if not boxes:
        return []
    try:
        raw = base64.b64decode(boxes, validate=True)
    except ValueError:
        return []
    names = text.split(" ") if text else []
    if len(raw) != 8 * len(names):
        return []
    edges = np.frombuffer(raw, dtype="<u2").reshape(-1, 4).astype(np.float64) / _SCALE
    return [Word(name, *map(float, edge)) for name, edge in zip(names, edges)]


def credits(query: np.ndarray, vectors: np.ndarray, cells: np.ndarray, cell_count: int,
            weights: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """(credit of each grid cell, total credit): each query token's best match, weighted as the
    score weighs it, credited to that vector's cell; matches below zero earn nothing."""
    sims = query.astype(np.float32) @ vectors.astype(np.float32).T
    if weights is not None:
        sims = sims * weights[:, None].astype(np.float32)
    best = sims.argmax(axis=1)
    earned = np.clip(sims[np.arange(len(query)), best], 0, None)
    heat = np.zeros(cell_count, dtype=np.float64)
    placed = cells[best] >= 0
    np.add.at(heat, cells[best][placed], earned[placed])
    return heat, float(earned.sum())


def find_regions(heat: np.ndarray, total: float, grid: tuple[int, int], words: Sequence[Word],
                 size_pt: tuple[float, float], limit: int = MAX_REGIONS) -> list[Region]:
    """The regions of a page's cell `heat` (`credits`), best first."""
    rows, cols = grid
    hot = np.flatnonzero(heat > 0)
    if total <= 0 or not len(hot):
        return []
    cells_of_words = word_cells(words, grid).tolist()
    worded = set(cells_of_words)
    found = []
    for cells in _groups(hot, cols):
        inside = [w for w, cell in zip(words, cells_of_words) if cell in cells]
        bare = [divmod(cell, cols) for cell in sorted(cells - worded)]  # no word there: a figure's, a chart's
        edges = [(w.x0, w.y0, w.x1, w.y1) for w in inside]
        edges += [(c / cols, r / rows, (c + 1) / cols, (r + 1) / rows) for r, c in bare]
        box = (min(e[0] for e in edges), min(e[1] for e in edges), max(e[2] for e in edges), max(e[3] for e in edges))
        width, height = size_pt
        found.append(Region(box=tuple(round(float(v), 4) for v in box),  # type: ignore[arg-type]
                            points=(round(box[0] * width, 1), round(box[1] * height, 1),
                                    round(box[2] * width, 1), round(box[3] * height, 1)),
                            share=round(float(heat[sorted(cells)].sum()) / total, 4),
                            text=" ".join(w.text for w in inside)))
    found.sort(key=lambda region: -region.share)
    return found[:limit]


def _groups(cells: np.ndarray, cols: int) -> list[set[int]]:
    """`cells` (row-major indices) in groups whose members are at most REGION_GAP empty cells
    apart, joined through one another; there are at most as many as the query has tokens."""
    r, c = np.divmod(cells, cols)
    reach = REGION_GAP + 1
    near = (np.abs(r[:, None] - r[None, :]) <= reach) & (np.abs(c[:, None] - c[None, :]) <= reach)
    group = list(range(len(cells)))

    def root(i: int) -> int:
        while group[i] != i:
            group[i] = group[group[i]]
            i = group[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(near, 1))):
        group[root(int(i))] = root(int(j))
    members: dict[int, set[int]] = {}
    for i, cell in enumerate(cells.tolist()):
        members.setdefault(root(i), set()).add(cell)
    return list(members.values())

