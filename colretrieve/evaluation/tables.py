"""Rows of Hugging Face datasets kept as local files: parquet (a hub snapshot) or arrow
(`save_to_disk`), read with pyarrow in small batches so image columns never sit in memory whole."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import ColretrieveError

TABLE_SUFFIXES = (".parquet", ".arrow")
_BATCH_ROWS = 64


def _pyarrow():
    try:
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise ColretrieveError("reading parquet/arrow datasets needs pyarrow: "
                               "pip install 'colretrieve[benchmarks]'") from exc
    import pyarrow.ipc
    import pyarrow.parquet

    return pyarrow


def table_files(root: Path, split: str = "test") -> list[Path]:
    """The data files of one split under `root` (or `root` itself if it is a file).

    Hub snapshots name files `test-00000-of-00001.parquet`, `save_to_disk` puts a split in a
    folder `test/`; files of `split` are taken if there are any, else every data file (a
    dataset saved without splits). `datasets`' own cache files are left out.
    """
    candidates = [root] if root.is_file() else sorted(root.rglob("*"))
    files = [p for p in candidates if p.suffix in TABLE_SUFFIXES and p.is_file() and not p.name.startswith("cache-")]
    chosen = [p for p in files if p.name.startswith(split) or split in p.relative_to(root).parts[:-1]]
    return chosen or files


def column_names(files: Sequence[Path]) -> list[str]:
    """The columns of the first file (the files of one split share a schema)."""
    pa = _pyarrow()
    path = files[0]
    if path.suffix == ".parquet":
        return list(pa.parquet.read_schema(path).names)
    return list(_arrow(pa, path)[0].names)


def pick_column(names: Sequence[str], *candidates: str, where: Path) -> str:
    """The first of `candidates` present (the ViDoRe releases spell ids two ways)."""
    for name in candidates:
        if name in names:
            return name
    raise ColretrieveError(f"{where}: no column {' or '.join(candidates)} (columns: {', '.join(names)})")


def read_rows(files: Sequence[Path], columns: Sequence[str]) -> Iterator[dict[str, Any]]:
    """Rows as dicts of `columns`, file after file, a few dozen rows in memory at a time."""
    pa = _pyarrow()
    for path in files:
        try:
            if path.suffix == ".parquet":
                batches = pa.parquet.ParquetFile(path).iter_batches(batch_size=_BATCH_ROWS, columns=list(columns))
                for batch in batches:
                    yield from batch.to_pylist()
            else:
                for batch in _arrow(pa, path)[1]:
                    batch = batch.select(list(columns))
                    for start in range(0, batch.num_rows, _BATCH_ROWS):  # writers batch up to 1,000 rows
                        yield from batch.slice(start, _BATCH_ROWS).to_pylist()
        except (pa.ArrowException, OSError) as exc:
            raise ColretrieveError(f"{path}: cannot be read as a table ({exc})") from exc


def _arrow(pa: Any, path: Path) -> tuple[Any, Iterator[Any]]:
    """Schema and record batches of an arrow file: `save_to_disk` writes the stream format,
    other tools the file format. Memory-mapped, so batches are read only when iterated."""
    try:
        reader = pa.ipc.open_stream(pa.memory_map(str(path)))
        return reader.schema, iter(reader)
    except pa.ArrowInvalid:
        file = pa.ipc.open_file(pa.memory_map(str(path)))
        return file.schema, (file.get_batch(i) for i in range(file.num_record_batches))
