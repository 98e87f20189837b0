"""Bytes on the wire per query on a Qdrant server, K = 256 ColPali-shaped candidates: before (the
candidates' multi-vectors fetched and scored by colretrieve) and after (MAX_SIM in the server,
scores only back: `QdrantStore.score_in_store`).

    QDRANT_URL=http://localhost:6333 python benchmarks/bench_wire.py     # a real server: counted
    python benchmarks/bench_wire.py                                        # none: serialized sizes

With QDRANT_URL every byte between qdrant-client and the server passes a counting TCP proxy on
127.0.0.1 (REST on the URL's port, gRPC on 6334): headers, framing and compression included.
Without a server, qdrant-client's local mode answers and the table gives the serialized size of
the same requests and answers as the server would send them: REST as qdrant-client's own JSON
models, gRPC as the protobuf messages qdrant-client converts them to (HTTP headers and HTTP/2
framing not counted).
"""

from __future__ import annotations

import argparse
import os
import socket
import threading
import uuid
from urllib.parse import urlsplit

import numpy as np
from qdrant_client import models
from qdrant_client.conversions.conversion import RestToGrpc

from colretrieve.storage import PagePoint, StoreSchema
from colretrieve.storage.qdrant import QdrantStore, connect

DIM, VECTORS, TOKENS = 128, 1030, 20


class CountingProxy:
    """A TCP forwarder on 127.0.0.1 that counts the bytes each way: a transport-level count that
    needs nothing of the client's internals, the same for REST and gRPC."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.sent = self.received = 0
        self._lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, outbound: bool) -> None:
        try:
            while data := source.recv(1 << 16):
                with self._lock:
                    if outbound:
                        self.sent += len(data)
                    else:
                        self.received += len(data)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            sink.close()

    def reset(self) -> tuple[int, int]:
        with self._lock:
            counts, self.sent, self.received = (self.sent, self.received), 0, 0
        return counts


def corpus(pages: int, rng: np.random.Generator) -> list[PagePoint]:
    def unit(x: np.ndarray) -> np.ndarray:
        return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)

    return [PagePoint(str(uuid.UUID(int=j + 1)), unit(rng.standard_normal((VECTORS, DIM))),
                      unit(rng.standard_normal(DIM)), {"doc_id": f"doc{j}", "page": 1, "state": "complete"})
            for j in range(pages)]


def measured(url: str, grpc: bool, k: int, points: list[PagePoint], query: np.ndarray, single: np.ndarray
             ) -> tuple[tuple[int, int], tuple[int, int]]:
    """(sent, received) bytes of one query before and after, through counting proxies (REST, and
    gRPC where `grpc`: the client may use both)."""
    from qdrant_client import QdrantClient

    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    rest, remote = CountingProxy(host, parts.port or 6333), CountingProxy(host, 6334)
    client = QdrantClient(url=f"http://127.0.0.1:{rest.port}", grpc_port=remote.port, prefer_grpc=grpc,
                          api_key=os.environ.get("QDRANT_API_KEY"), check_compatibility=False)

    def count() -> tuple[int, int]:
        (a, b), (c, d) = rest.reset(), remote.reset()
        return a + c, b + d

    return _both(client, k, points, query, single, count)


def _both(client, k, points, query, single, count) -> tuple[tuple[int, int], tuple[int, int]]:
    store = QdrantStore.create(client, f"wire_{uuid.uuid4().hex[:8]}", StoreSchema(DIM, DIM, "wire"))
    try:
        store.upsert(points)
        count()
        found = store.candidates(single, k)
        store.pages(found)  # before: every candidate's multi-vectors to the client
        before = count()
        store.score_in_store(query, single, k)  # after: MAX_SIM in the server, scores back
        after = count()
        return before, after
    finally:
        client.delete_collection(store.collection)
        store.close()


def serialized(k: int, points: list[PagePoint], query: np.ndarray, single: np.ndarray) -> dict[str, tuple[int, int]]:
    """Sizes of the same requests and answers as JSON (REST) and protobuf (gRPC), local mode."""
    client = connect(":memory:")
    store = QdrantStore.create(client, "wire", StoreSchema(DIM, DIM, "wire"))
    store.upsert(points)
    vector = single.tolist()
    candidates = models.QueryRequest(query=vector, using="page", limit=k)
    found = client.query_points("wire", query=vector, using="page", limit=k).points
    records = client.retrieve("wire", ids=[p.id for p in found], with_payload=False, with_vectors=["patches"])
    for record in records:  # the server keeps float16 and writes each number as the shortest float32 text
        record.vector = {"patches": np.asarray(record.vector["patches"], np.float16).astype(np.float32)}
    scored = store.score_in_store(query, single, k)
    prefetch = models.Prefetch(query=vector, using="page", limit=k)
    batch = [candidates, models.QueryRequest(prefetch=prefetch, query=query.tolist(), using="patches", limit=k)]
    answers = [found, [models.ScoredPoint(id=i, version=0, score=float(s), payload={})
                       for i, s in zip(scored.ids, scored.maxsim)]]
    retrieve = models.PointRequest(ids=[p.id for p in found], with_vector=["patches"], with_payload=False)
    for point in [*found, *records]:
        point.payload = point.payload or {}
    rest_before = (len(candidates.model_dump_json(exclude_none=True))
                   + len(retrieve.model_dump_json(exclude_none=True)),
                   sum(len(p.model_dump_json(exclude_none=True)) for p in found)
                   + len(records) * _json_record(records[:SAMPLE]))
    rest_after = (sum(len(r.model_dump_json(exclude_none=True)) for r in batch),
                  sum(len(p.model_dump_json(exclude_none=True)) for answer in answers for p in answer))
    for record in records:
        record.vector = {"patches": record.vector["patches"].tolist()}
    grpc_before = (RestToGrpc.convert_query_request(candidates, "wire").ByteSize() + 40 * len(found),
                   sum(RestToGrpc.convert_scored_point(p).ByteSize() for p in found)
                   + sum(RestToGrpc.convert_record(r).ByteSize() for r in records))
    grpc_after = (sum(RestToGrpc.convert_query_request(r, "wire").ByteSize() for r in batch),
                  sum(RestToGrpc.convert_scored_point(p).ByteSize() for answer in answers for p in answer))
    store.close()
    return {"REST before": rest_before, "REST after": rest_after, "gRPC before": grpc_before, "gRPC after": grpc_after}


#: Records whose JSON is written number by number to measure its mean size (all are alike).
SAMPLE = 8


def _json_record(records: list[models.Record]) -> int:
    """Mean JSON size of `records` whose vectors are float32 arrays, each number written as its
    shortest float32 text (what the server's serializer writes)."""
    sizes = []
    for record in records:
        matrix = record.vector["patches"]
        text = "[" + ",".join("[" + ",".join(map(str, row)) + "]" for row in matrix) + "]"
        record.vector = {"patches": [[0.0]]}
        sizes.append(len(record.model_dump_json(exclude_none=True)) - len("[[0.0]]") + len(text))
        record.vector = {"patches": matrix}
    return round(sum(sizes) / len(sizes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", type=int, default=256)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    points = corpus(args.k, rng)
    query = rng.standard_normal((TOKENS, DIM)).astype(np.float32)
    single = points[0].summary
    url = os.environ.get("QDRANT_URL")
    if url:
        rows = {}
        for grpc in (False, True):
            before, after = measured(url, grpc, args.k, points, query, single)
            rows[f"{'gRPC' if grpc else 'REST'} before"], rows[f"{'gRPC' if grpc else 'REST'} after"] = before, after
        how = f"counted through a TCP proxy to {url}"
    else:
        rows = serialized(args.k, points, query, single)
        how = "serialized sizes (qdrant-client local mode; no server: set QDRANT_URL to count)"
    print(f"K = {args.k} ColPali-shaped pages ({VECTORS} x {DIM}), one query of {TOKENS} tokens; {how}\n")
    print("| path | sent | received |")
    print("|---|---:|---:|")
    for name, (sent, received) in rows.items():
        print(f"| {name} | {sent / 1e6:,.3f} MB | {received / 1e6:,.3f} MB |")


if __name__ == "__main__":
    main()
