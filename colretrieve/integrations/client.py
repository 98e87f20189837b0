"""`Client`: a `colretrieve serve` service from Python, shaped like `Index`, so code written
against a local index (or a framework retriever over one) runs against a service unchanged.

It speaks the service's JSON over httpx (already a dependency, through qdrant-client). Hits
are `Hit`s whose `image()` asks the service for the page, since the source file is there.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from ..errors import ColretrieveError, NotFoundError
from ..search import Hit
from ..settings import API_KEY_ENV, IMAGE_SIDE, K
from ..storage import Filter


@dataclass
class RemoteHit(Hit):
    """A hit from a service; its image comes from the service."""

    client: Client | None = field(default=None, repr=False, compare=False)

    def image(self, dpi: int | None = None, max_side: int = IMAGE_SIDE) -> Image.Image:
        """The page as the service renders it, its long side at most `max_side` (`dpi` is the
        service's own choice)."""
        if self.client is None:
            raise ColretrieveError("this hit came from no service")
        return self.client.page_image(self.doc_id, self.page, max_side)


class Client:
    """A colretrieve service at `url` (e.g. http://127.0.0.1:8000). `api_key` defaults to
    $COLRETRIEVE_API_KEY; `tenant` sees that team's pages only. Errors the service answers are
    ColretrieveErrors carrying its message (NotFoundError for a 404)."""

    def __init__(self, url: str, api_key: str | None = None, *, tenant: str | None = None,
                 timeout: float = 60.0) -> None:
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        self.url, self.tenant = url.rstrip("/"), tenant
        self._http = httpx.Client(base_url=self.url, timeout=timeout,
                                  headers={"Authorization": f"Bearer {key}"} if key else {})

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self.tenant is not None:
            kwargs["params"] = {**kwargs.get("params", {}), "tenant": self.tenant}
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ColretrieveError(f"{self.url}: cannot reach the service ({exc})") from None
        if response.is_success:
            return response
        try:
            message = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200] or response.reason_phrase
        kind = NotFoundError if response.status_code == 404 else ColretrieveError
        raise kind(f"{self.url}{path}: {response.status_code} {message}")

    def _hit(self, found: dict[str, Any]) -> RemoteHit:
        return RemoteHit(**{name: found[name] for name in ("rank", "score", "doc_id", "path", "page", "page_count",
                                                          "text")}, metadata=found.get("metadata") or {},
                         regions=found.get("regions") or [], client=self)

    def search(self, text: str, k: int = K, filter: Filter | None = None, *, exact: bool = False) -> list[Hit]:
        """As `Index.search`; the service bounds `k` (settings.MAX_K)."""
        body = {"query": text, "k": k, "filter": filter, "exact": exact, "tenant": self.tenant}
        return [self._hit(hit) for hit in self._call("POST", "/search", json=body).json()["hits"]]

    def page(self, doc_id: str, page: int) -> Hit:
        return self._hit(self._call("GET", f"/pages/{doc_id}/{page}").json())

    def page_image(self, doc_id: str, page: int, max_side: int = IMAGE_SIDE) -> Image.Image:
        response = self._call("GET", f"/pages/{doc_id}/{page}/image", params={"max_side": max_side})
        return Image.open(io.BytesIO(response.content))

    def documents(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/documents").json()["documents"])

    def stats(self) -> dict[str, Any]:
        return dict(self._call("GET", "/stats").json())

    def delete(self, doc_id: str) -> int:
        """Remove a document by its full id; the number of pages removed."""
        return int(self._call("DELETE", f"/documents/{doc_id}").json()["deleted_pages"])

    def ingest(self, paths: list[str | Path], *, images: bool = False,
               metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """Start an ingest job of files on the service's disk (under its --root folders), with
        `metadata` for each of their pages; the job's state, which `job(id)` follows."""
        body = {"paths": [str(path) for path in paths], "images": images, "tenant": self.tenant,
                "metadata": metadata or {}}
        return dict(self._call("POST", "/ingest", json=body).json())

    def upload(self, files: list[str | Path], *, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """Start an ingest job of local files, sent to the service (which keeps them), with
        `metadata` for each of their pages."""
        handles = [open(path, "rb") for path in files]
        try:
            parts = [("files", (Path(path).name, handle)) for path, handle in zip(files, handles)]
            form = {"metadata": json.dumps(metadata)} if metadata else None
            return dict(self._call("POST", "/ingest/upload", files=parts, data=form).json())
        finally:
            for handle in handles:
                handle.close()

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/jobs/{job_id}").json())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
