"""`colretrieve`: a thin click shell over `Index`. Human output by default, `--json` for programs."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import settings
from .documents.render import MAX_DPI, MIN_DPI, RENDERERS
from .errors import ColretrieveError
from .queries import searchable
from .settings import DEFAULT_INDEX_DIR, IMAGE_WEIGHT, INDEX_ENV, default_index_dir
from .storage.collection import QUANTIZATIONS, QdrantOptions
from .vectors.forms import FORMATS

if TYPE_CHECKING:
    from .index import Index
    from .labels import Labels

INDEX_HELP = (f"Index directory, or http://HOST:6333/COLLECTION on a Qdrant server or cluster "
              f"[default: ${INDEX_ENV} or ./{DEFAULT_INDEX_DIR}].")


def index_option(command):
    """--index DIR|URL and --grpc, which every command that opens an index takes."""
    command = click.option("--grpc", is_flag=True,
                           help="Talk to a Qdrant server over gRPC (port 6334) instead of REST.")(command)
    return click.option("--index", "target", default=None, metavar="DIR|URL", help=INDEX_HELP)(command)


def _tenant(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from .tenancy import check_tenant  # a usage error, before any index or model is opened

    try:
        return None if value is None else check_tenant(value)
    except ColretrieveError as exc:
        raise click.BadParameter(str(exc)) from None


def _filters(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict[str, Any]:
    from .filters import parse_filters  # a usage error, before any index or model is opened

    try:
        return parse_filters(value)
    except ColretrieveError as exc:
        raise click.BadParameter(str(exc)) from None


def _metadata(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict[str, Any]:
    from .filters import parse_metadata

    try:
        return parse_metadata(value)
    except ColretrieveError as exc:
        raise click.BadParameter(str(exc)) from None


def _labels(ctx: click.Context, param: click.Parameter, value: str | None) -> Labels | None:
    from .labels import Labels

    if value is None:
        if ctx.params.get("templates"):
            raise click.BadParameter("--template needs --labels")
        return None
    try:
        return Labels.parse(value, ctx.params.get("templates", ()))
    except ColretrieveError as exc:
        raise click.BadParameter(str(exc)) from None


template_option = click.option("--template", "templates", multiple=True, metavar="TEXT", is_eager=True,
                               help="A prompt a label is put in, with {} for the label (repeatable; the labels' "
                                    "prompts are averaged) [default: "
                                    f"{', '.join(repr(t) for t in settings.LABEL_TEMPLATES)}].")


tenant_option = click.option("--tenant", default=None, metavar="NAME", callback=_tenant,
                             help="The team whose pages to see and write, in an index many teams share "
                                  "[default: no team; sees every page].")


def _target(target: str | None) -> str:
    return target or str(default_index_dir())


def layout_options(command):
    """How a new index's pages are stored: for `ingest` into a new index and `migrate`."""
    for option in reversed([
        click.option("--store", type=click.Choice(settings.DIRECTORY_STORES), default=settings.STORE, show_default=True,
                     help="For a new directory index: embedded qdrant-edge, or qdrant-client's local mode."),
        click.option("--on-disk/--in-ram", default=QdrantOptions.on_disk, show_default=True,
                     help="Qdrant collection: multi-vectors in memory-mapped files or all in RAM."),
        click.option("--quantization", type=click.Choice([q for q in QUANTIZATIONS if q]), default=None,
                     help="Qdrant collection: a compressed RAM copy of the multi-vectors."),
        click.option("--shards", type=click.IntRange(min=1), default=None, help="Qdrant collection: shard_number."),
        click.option("--replicas", type=click.IntRange(min=1), default=None,
                     help="Qdrant collection: replication_factor."),
        click.option("--write-consistency", type=click.IntRange(min=1), default=None,
                     help="Qdrant collection: write_consistency_factor."),
    ]):
        command = option(command)
    return command


def _layout(on_disk: bool, quantization: str | None, shards: int | None, replicas: int | None,
            write_consistency: int | None) -> QdrantOptions:
    return QdrantOptions(on_disk=on_disk, quantization=quantization, shard_number=shards,
                         replication_factor=replicas, write_consistency_factor=write_consistency)


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")


def _index() -> type[Index]:
    """`Index`, imported when a command runs: help and usage errors load no model library."""
    from .index import Index

    return Index


def _extra(command: str) -> None:
    """A one-line usage error where the service's libraries are not installed."""
    import importlib.util

    missing = [name for name in ("fastapi", "uvicorn", "multipart", "mcp") if importlib.util.find_spec(name) is None]
    if missing:
        _fail(f"colretrieve {command} needs {', '.join(missing)}: pip install 'colretrieve[serve]'")


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def _shown(path: str) -> str:
    """A stored absolute path, shown relative to the working directory when under it."""
    try:
        return os.path.relpath(path) if not os.path.relpath(path).startswith("..") else path
    except ValueError:
        return path


class _Group(click.Group):
    """Turn colretrieve's own errors into one line on stderr and exit status 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ColretrieveError as exc:
            _fail(str(exc))
        except BrokenPipeError:  # the reader of our output went away (e.g. `| head`)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except OSError as exc:  # the disk or the system said no where no step expected it
            _fail(f"{exc.filename or 'colretrieve'}: {exc.strerror or exc}")


device_option = click.option("--device", default=settings.DEVICE, show_default=True,
                             help="Where models run: auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1, mps.")


@click.group(cls=_Group)
@click.version_option(package_name="colretrieve")
def main() -> None:
    """Page retrieval over PDFs and page images with late interaction (ColPali-style MaxSim)."""


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@index_option
@click.option("--encoder", default=settings.ENCODER, show_default=True, metavar="NAME",
              help="Page encoder, for a new index: 'text' (offline default: the words, MiniLM), 'text:MODEL' (the "
                   "words, a ColBERT-family model) or a page-image model's hub id or folder (ColPali, ColQwen2, "
                   "ColModernVBert, NeoMME, or a sentence-transformers multi-vector model).")
@click.option("--prefilter", default=None, metavar="NAME",
              help="Single-vector prefilter, for a new index: 'native' (the encoder's own; default where it has "
                   "one), 'pooled' (mean of the page's vectors; default otherwise) or a CLIP/SigLIP hub id or folder.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=None,
              help="ColQwen2: largest page image in pixels before scaling down, for a new index (fewer: less memory).")
@click.option("--dpi", type=click.IntRange(MIN_DPI, MAX_DPI), default=settings.DPI, show_default=True,
              help="Render resolution, for a new index.")
@click.option("--renderer", type=click.Choice(RENDERERS), default=settings.RENDERER, show_default=True,
              help="Rasteriser, for a new index.")
@click.option("--ocr", type=click.Choice(settings.OCR_ENGINES), default=settings.OCR,
              show_default=True, help="OCR for pages without a text layer, for a new index.")
@click.option("--pool-factor", type=click.IntRange(min=1), default=settings.POOL_FACTOR, show_default=True,
              help="Token pooling, for a new index: keep about 1/N of each page's vectors (2: half the storage).")
@click.option("--vectors", "vector_format", type=click.Choice(FORMATS), default=settings.VECTORS, show_default=True,
              help="Stored form MaxSim reads, for a new index; int8 and binary rescore the best pages from float16.")
@click.option("--images", is_flag=True,
              help="Also take image files in folders (PNG, JPEG, TIFF, WebP, BMP, GIF) as pages, read by OCR.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Pages per encoder step [default: the encoder's]; lower it to save memory.")
@layout_options
@device_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--meta", "metadata", multiple=True, metavar="KEY=VALUE", callback=_metadata,
              help="Metadata of these documents, returned with their hits and taken by --filter (repeatable); "
                   "a FILE.json beside a document adds its own.")
@click.option("--labels", "labels", default=None, metavar="A,B,...", callback=_labels,
              help="Give each new page its zero-shot label among these (see classify); --filter label=A finds them.")
@template_option
@tenant_option
@json_option
def ingest(paths: tuple[Path, ...], target: str | None, grpc: bool, encoder: str, prefilter: str | None,
           max_pixels: int | None, dpi: int, renderer: str, ocr: str, pool_factor: int, vector_format: str,
           images: bool, batch_size: int | None, store: str, on_disk: bool, quantization: str | None,
           shards: int | None, replicas: int | None, write_consistency: int | None,
           device: str, quiet: bool, metadata: dict[str, Any], labels: Labels | None, templates: tuple[str, ...],
           tenant: str | None, as_json: bool) -> None:
    """Add the PDFs in PATHS (files or folders, searched recursively) to the index.

    Image files named in PATHS are pages too; --images also takes those found in folders.

    Unchanged files are skipped and an interrupted run resumes. Exit status 1 if any file failed.
    """
    options: dict[str, Any] = {"max_pixels": max_pixels} if max_pixels else {}
    with _index().open_or_create(_target(target), encoder, device=device, grpc=grpc, dpi=dpi, renderer=renderer,
                              ocr=ocr, prefilter=prefilter, pool_factor=pool_factor, vectors=vector_format,
                              store=store, qdrant=_layout(on_disk, quantization, shards, replicas, write_consistency),
                              tenant=tenant, **options) as idx:
        report = idx.ingest(paths, images=images, progress=not quiet and not as_json, batch_size=batch_size,
                            echo=lambda line: click.echo(line, err=True), metadata=metadata, labels=labels)
    if as_json:
        click.echo(json.dumps({"documents": report.documents, "pages": report.pages,
                               "unchanged": report.unchanged, "seconds": round(report.seconds, 3),
                               "pages_per_second": round(report.pages_per_second, 3),
                               "failed": [{"path": str(p), "reason": r} for p, r in report.failed]}))
    else:
        click.echo(f"ingested {report.documents} documents, {report.pages} pages in {report.seconds:.1f} s "
                   f"({report.pages_per_second:.2f} pages/s); {report.unchanged} unchanged, "
                   f"{len(report.failed)} failed", err=True)
    sys.exit(1 if report.failed else 0)


@main.command()
@click.argument("text", required=False, default=None)
@index_option
@click.option("--image", "image", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Search with this image (a page, a crop, a figure; a PDF: its first page), alone or with TEXT.")
@click.option("--image-weight", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=IMAGE_WEIGHT, show_default=True, help="The image's share of the score when TEXT comes too.")
@click.option("-k", "k", type=click.IntRange(min=1), default=settings.K, show_default=True, help="Pages to return.")
@click.option("--exact", is_flag=True, help="Score every page, not only the prefilter's candidates.")
@click.option("--candidates", type=click.IntRange(min=1), default=settings.CANDIDATES, show_default=True,
              help="Pages the prefilter passes to MaxSim.")
@click.option("--file", "file_name", default=None, help="Only pages of PDFs with this file name.")
@click.option("--filter", "filters", multiple=True, metavar="EXPR", callback=_filters,
              help="Only pages where EXPR holds (repeatable, all must): 'page>=2', 'file in (a.pdf,b.pdf)', "
                   "'year>=2020' (metadata), 'lang not in (de,it)', 'draft', 'not draft'.")
@click.option("--maps", "maps_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write a similarity-map PNG per hit into this folder: where on the page the query matched.")
@click.option("--maps-per-token", is_flag=True, help="With --maps, also one map per query token.")
@click.option("--crops", "crops_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write each hit's regions, cut from the page, as NN-<file>-pPAGE-rR.png in this folder.")
@device_option
@tenant_option
@json_option
def query(text: str | None, image: Path | None, image_weight: float, target: str | None, grpc: bool, k: int,
          exact: bool, candidates: int, file_name: str | None, filters: dict[str, Any], maps_dir: Path | None,
          maps_per_token: bool, crops_dir: Path | None, device: str, tenant: str | None, as_json: bool) -> None:
    """Print the K pages that best answer TEXT (or an --image), each with the regions of the
    page that matched.

    Exit status 1 if the hits were printed but --maps or --crops could not be written.
    """
    if text is None and image is None:
        _fail("give a query TEXT or --image FILE")
    if text is not None and not searchable(text):
        _fail(f"query {text!r} has no letter or digit to search for")
    if image is not None and not image.is_file():
        _fail(f"--image {image}: no such file")
    if maps_dir and image is not None:
        _fail("--maps draws where a text query matched; it takes no --image")
    with _index().open(_target(target), device=device, grpc=grpc, read_only=True, tenant=tenant) as idx:
        where = {**filters, **({"file": file_name} if file_name else {})}
        hits = idx.search(text or "", k=k, exact=exact, candidates=candidates, filter=where or None, image=image,
                          image_weight=image_weight, explain=lambda line: click.echo(line, err=True))
        _print_hits(hits, as_json)
        if maps_dir:
            try:
                maps = idx.similarity_maps(text or "", hits, maps_dir, per_token=maps_per_token)
            except (ColretrieveError, OSError) as exc:
                click.echo(f"error: --maps: {exc}", err=True)
                sys.exit(1)
            for path in maps:
                click.echo(f"map: {path}", err=True)
        if crops_dir:
            from .grounding import write_crops

            try:
                crops = write_crops(hits, crops_dir)
            except (ColretrieveError, OSError) as exc:
                click.echo(f"error: --crops: {exc}", err=True)
                sys.exit(1)
            for path in crops:
                click.echo(f"crop: {path}", err=True)


def _print_hits(hits: list, as_json: bool) -> None:
    if as_json:
        for hit in hits:
            click.echo(json.dumps(hit.to_dict(), ensure_ascii=False))
        return
    if not hits:
        click.echo("no pages in the index match", err=True)
    for hit in hits:
        snippet = " ".join(hit.text.split())[:160]
        click.echo(f"{hit.rank:>2}. {hit.score:7.3f}  {_shown(hit.path)}  page {hit.page}/{hit.page_count}")
        click.echo(f"    {snippet}" if snippet else "    (no text on this page)")
        if hit.regions and hit.regions[0].text:
            top = hit.regions[0]
            click.echo(f"    match ({top.share:.0%} of the score): {' '.join(top.text.split())[:160]}")


@main.command()
@index_option
@click.option("--labels", "labels", required=True, metavar="A,B,...", callback=_labels,
              help='The labels to choose from, e.g. "invoice,chart,table,form,slide,scan".')
@template_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
@tenant_option
@json_option
def classify(target: str | None, grpc: bool, labels: Labels, templates: tuple[str, ...], quiet: bool,
             tenant: str | None, as_json: bool) -> None:
    """Give every page of the index its zero-shot label among --labels, stored with the page.

    The single-vector encoder scores each page against each label's prompts, as it was trained:
    a softmax over the labels (CLIP, the text default), a sigmoid per label (SigLIP). Then
    `query --filter label=chart` finds the pages labelled chart.
    """
    with _index().open(_target(target), grpc=grpc, tenant=tenant) as idx:
        found = idx.classify(labels, progress=not quiet and not as_json, echo=lambda line: click.echo(line, err=True))
    for page in found:
        if as_json:
            click.echo(json.dumps(page, ensure_ascii=False))
        elif page["label"] is None:
            click.echo(f"{'(no label)':<16} {'':5}  {_shown(page['path'])}  page {page['page']}")
        else:
            click.echo(f"{page['label']:<16} {page['label_scores'][page['label']]:.3f}  {_shown(page['path'])}  "
                       f"page {page['page']}")
    counts = {name: sum(page["label"] == name for page in found) for name in labels.names}
    click.echo(f"classified {len(found)} pages: " + ", ".join(f"{name} {n}" for name, n in counts.items()), err=True)


@main.command()
@click.argument("document")
@index_option
@tenant_option
def delete(document: str, target: str | None, grpc: bool, tenant: str | None) -> None:
    """Remove DOCUMENT, given by its file path or doc id (or a unique prefix of it)."""
    with _index().open(_target(target), grpc=grpc, tenant=tenant) as idx:
        removed = idx.delete(document)
    click.echo(f"deleted {document}: {removed} pages")


@main.command()
@index_option
@tenant_option
@json_option
def stats(target: str | None, grpc: bool, tenant: str | None, as_json: bool) -> None:
    """Documents, pages, vectors and bytes on disk of the index."""
    with _index().open(_target(target), grpc=grpc, read_only=True, tenant=tenant) as idx:
        info = idx.stats()
    if as_json:
        click.echo(json.dumps(info))
        return
    width = max(map(len, info))
    for key, value in info.items():
        shown = f"{value:,}" if isinstance(value, int) else "-" if value is None else value
        click.echo(f"{key.replace('_', ' '):<{width}}  {shown}")


@main.command()
@index_option
@click.option("--host", default=settings.HOST, show_default=True,
              help="Address to listen on; other than loopback only with an API key.")
@click.option("--port", type=click.IntRange(0, 65535), default=settings.PORT, show_default=True)
@click.option("--api-key-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=f"File holding the bearer API key [default: ${settings.API_KEY_ENV}; none: loopback only].")
@click.option("--root", "roots", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A folder whose files POST /ingest may name (repeatable) [default: none: uploads only].")
@click.option("--cors-origin", "cors_origins", multiple=True, metavar="ORIGIN",
              help="Let browser pages from ORIGIN call the API (repeatable) [default: none].")
@click.option("--max-upload-mb", type=click.IntRange(min=1), default=settings.MAX_UPLOAD_BYTES >> 20,
              show_default=True, help="Largest upload request, in MiB.")
@device_option
@tenant_option
def serve(target: str | None, grpc: bool, host: str, port: int, api_key_file: Path | None, roots: tuple[Path, ...],
          cors_origins: tuple[str, ...], max_upload_mb: int, device: str, tenant: str | None) -> None:
    """Serve the index over HTTP (search, pages, documents, ingest jobs; MCP at /mcp).

    The OpenAPI description is at /docs and /openapi.json.
    """
    from .service.auth import api_key, check_binding

    key = api_key(api_key_file)
    check_binding(host, key)
    _extra("serve")
    from .service.http import serve as run

    run(_target(target), grpc=grpc, host=host, port=port, key=key, roots=roots, cors_origins=cors_origins,
        upload_limit=max_upload_mb << 20, device=device, tenant=tenant, say=lambda line: click.echo(line, err=True))


@main.command("mcp")
@index_option
@device_option
@tenant_option
def mcp_server(target: str | None, grpc: bool, device: str, tenant: str | None) -> None:
    """Serve the index to an LLM agent over MCP on stdin/stdout (tools: search_pages, get_page,
    list_documents)."""
    _extra("mcp")
    from .service.mcp import run_stdio

    run_stdio(_target(target), grpc=grpc, device=device, tenant=tenant)


@main.command()
@index_option
@click.option("--deep", is_flag=True, help="Also compare every stored vector with its checksum (reads them all).")
@click.option("--repair", is_flag=True,
              help="Rebuild a lost index.json from the store, drop damaged pages and mark their documents "
                   "incomplete, so the next ingest encodes them again.")
@json_option
def check(target: str | None, grpc: bool, deep: bool, repair: bool, as_json: bool) -> None:
    """Check that every stored page reads back as written, and repair what does not.

    Exit status 0 if the index is sound (or was repaired), 2 if damage was found and left.
    """
    from .check import check_index

    report = check_index(_target(target), deep=deep, repair=repair, grpc=grpc)
    if as_json:
        click.echo(json.dumps(report.to_dict()))
    else:
        if report.config_rebuilt:
            click.echo(f"rebuilt {report.index}/index.json from the store")
        for damage in report.damaged:
            click.echo(f"damaged: page {damage.page} of {damage.doc_id or '(unknown document)'}: {damage.reason}")
        for doc_id in report.incomplete:
            click.echo(f"incomplete: {doc_id} is marked complete but lacks pages")
        done = "repaired: the next ingest of the same files encodes what was dropped" if report.repaired else (
            "sound" if report.healthy else f"damaged: run colretrieve check --repair --index {report.index}")
        click.echo(f"{report.pages} pages checked{' deeply' if deep else ''}: {done}")
    sys.exit(0 if report.healthy else 2)


@main.command()
@click.argument("source", metavar="SRC")
@click.argument("destination", metavar="DST")
@layout_options
@click.option("--pool-factor", type=click.IntRange(min=2), default=None,
              help="Pool an unpooled index's pages on the way: keep about 1/N of each page's vectors.")
@click.option("--vectors", "vector_format", type=click.Choice(FORMATS), default=None,
              help="The new index's vector file (embedded store) [default: the source's].")
@click.option("--grpc", is_flag=True, help="Talk to Qdrant servers over gRPC (port 6334) instead of REST.")
@click.option("--batch-size", type=click.IntRange(min=1), default=settings.MIGRATE_BATCH, show_default=True,
              help="Pages per write.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@json_option
def migrate(source: str, destination: str, store: str, on_disk: bool, quantization: str | None, shards: int | None,
            replicas: int | None, write_consistency: int | None, pool_factor: int | None, vector_format: str | None,
            grpc: bool, batch_size: int, quiet: bool, as_json: bool) -> None:
    """Copy the index SRC to DST without encoding again (each a directory or http://HOST:6333/COLLECTION).

    Run it again after an interruption: pages already in DST are skipped. With --pool-factor
    or --vectors, DST is a compressed copy of SRC.
    """
    from .migrate import migrate as copy_index

    report = copy_index(source, destination, store=store, grpc=grpc, batch=batch_size, pool_factor=pool_factor,
                        vectors=vector_format,
                        qdrant=_layout(on_disk, quantization, shards, replicas, write_consistency),
                        progress=not quiet and not as_json)
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(report)))
    else:
        click.echo(f"copied {report.pages} pages ({report.skipped} already there), {report.documents} complete "
                   f"documents, in {report.seconds:.1f} s", err=True)


@main.command()
@click.argument("dataset", type=click.Path(exists=True, path_type=Path))
@click.option("--encoder", "retriever", type=click.Choice(["default", "bm25"]), default="default", show_default=True,
              help="The index's encoder, or BM25 over the same words.")
@click.option("--index", "index_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=f"Index directory [default: ${INDEX_ENV} or ./{DEFAULT_INDEX_DIR}].")
@click.option("--exact", is_flag=True, help="Score every page, not only the prefilter's candidates.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write all metrics as JSON: {metadata, metrics: {dataset: {...}}, by_kind, ingest, latency_ms}.")
def benchmark(dataset: Path, retriever: str, index_dir: Path | None, exact: bool, out: Path | None) -> None:
    """Run the benchmark at DATASET and print its metrics.

    DATASET is a PDF folder (pdfs/, queries.jsonl, qrels.tsv), a ViDoRe v2/v3 dataset (corpus/,
    queries/, qrels/ of parquet or arrow files) or ViDoRe v1 parquet/arrow files, all local.
    The corpus is ingested into --index (reused across runs: unchanged files are skipped);
    ViDoRe page images are written once to its corpus/ folder.
    """
    from .evaluation.datasets import load_dataset
    from .evaluation.runner import run_benchmark

    directory = index_dir or default_index_dir()
    if not (directory / settings.CONFIG_FILE).exists():  # made (and marked as ours) before its corpus/ is written
        _index().create(directory).close()
    data = load_dataset(dataset, corpus_dir=directory / "corpus")
    results = run_benchmark(data, directory, retriever, exact=exact, progress=True)
    if out:
        out.write_text(json.dumps(results, indent=2) + "\n")
    metrics = results["metrics"][data.name]
    click.echo(f"{data.name}: {len(data.queries)} queries, retriever {results['metadata']['encoder']}"
               f"{' (exact)' if exact else ''}")
    click.echo(f"{'':<14}" + "".join(f"{'@' + str(k):>8}" for k in (1, 3, 5, 10, 100)))
    for name in ("ndcg", "recall", "map", "mrr", "precision"):
        click.echo(f"{name:<14}" + "".join(f"{100 * metrics[f'{name}_at_{k}']:>8.1f}" for k in (1, 3, 5, 10, 100)))
    if results["by_kind"]:
        click.echo("\nnDCG@5 by query kind")
        for kind, row in results["by_kind"].items():
            click.echo(f"  {kind:<12}{row['queries']:>4} queries {100 * row['ndcg_at_5']:>7.1f}")
    ingest, latency = results["ingest"], results["latency_ms"]
    click.echo(f"\ningest: {ingest['pages']} new pages, {ingest['pages_per_second']} pages/s; "
               f"query latency p50 {latency['p50']} ms, p95 {latency['p95']} ms")
