"""Snapshots of live state in a key-value store (the worker's Faust table, a dict in tests).

The state is pickled and compressed as a whole: it is small (about 200 bytes per open claim,
measured in benchmarks/replay_throughput.py) and taking it whole is what keeps the engine's
state and the offsets it reflects consistent. It is cut into chunks (brokers refuse records
over about 1 MB) and written into one of two slots, the manifest last: a crash while a
snapshot is written leaves the previous one intact, and the keys stay bounded, so a
compacted changelog keeps exactly the latest snapshot.
"""

from __future__ import annotations

import json
import pickle
import zlib
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

FORMAT = 2  # 2: events in the reorder buffer are msgspec structs (claimflow.events)
MANIFEST = "manifest"
CHUNK_BYTES = 256 * 1024


class SnapshotError(Exception):
    """A snapshot that cannot be read back (another format, a missing or damaged chunk)."""


@dataclass(frozen=True)
class SnapshotInfo:
    slot: int
    chunks: int
    size: int  # compressed bytes
    label: str  # what the writer said about it (the offset it reflects)


def save(
    store: MutableMapping[str, bytes], state: Any, label: str, chunk_bytes: int = CHUNK_BYTES
) -> SnapshotInfo:
    blob = zlib.compress(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL), 1)
    previous = _manifest(store)
    slot = 1 - previous["slot"] if previous else 0
    old_chunks = _chunks_in(store, slot)
    chunks = max(1, -(-len(blob) // chunk_bytes))
    for i in range(chunks):
        store[f"{slot}/{i}"] = blob[i * chunk_bytes : (i + 1) * chunk_bytes]
    for i in range(chunks, old_chunks):
        del store[f"{slot}/{i}"]
    manifest = {"format": FORMAT, "slot": slot, "chunks": chunks, "size": len(blob), "label": label}
    store[MANIFEST] = json.dumps(manifest).encode()
    return SnapshotInfo(slot, chunks, len(blob), label)


def load(store: MutableMapping[str, bytes]) -> tuple[Any, SnapshotInfo] | None:
    """The latest snapshot and what it is, or None when there is none."""
    manifest = _manifest(store)
    if manifest is None:
        return None
    if manifest.get("format") != FORMAT:
        raise SnapshotError(
            f"snapshot format {manifest.get('format')!r}, this version reads {FORMAT}"
        )
    slot, chunks = manifest["slot"], manifest["chunks"]
    try:
        blob = b"".join(store[f"{slot}/{i}"] for i in range(chunks))
    except KeyError as exc:
        raise SnapshotError(f"snapshot chunk {exc} is missing") from exc
    if len(blob) != manifest["size"]:
        raise SnapshotError(f"snapshot is {len(blob)} bytes, its manifest says {manifest['size']}")
    try:
        state = pickle.loads(zlib.decompress(blob))
    except Exception as exc:  # any unpickling problem means the same thing: rebuild
        raise SnapshotError(f"snapshot does not load: {exc!r}") from exc
    return state, SnapshotInfo(slot, chunks, len(blob), str(manifest.get("label", "")))


def _manifest(store: MutableMapping[str, bytes]) -> dict[str, Any] | None:
    raw = store.get(MANIFEST)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise SnapshotError(f"snapshot manifest is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise SnapshotError("snapshot manifest is not an object")
    return data


def _chunks_in(store: MutableMapping[str, bytes], slot: int) -> int:
    n = 0
    while f"{slot}/{n}" in store:
        n += 1
    return n
