"""Snapshots of live state in a key-value store (the worker's Faust table, a dict in tests).

The state is written as data, never code (claimflow/live/state_codec.py: msgpack of a closed set
of types; a pickle read back from a changelog topic would run whatever its writer put in
it), compressed, and signed: HMAC-SHA256 with the configured key (`CLAIMFLOW_SNAPSHOT_KEY`),
else a SHA-256 digest that catches damage but not a forger. A snapshot of another format,
with a bad signature or digest, or whose content is not a state this version writes, is
refused with a reason (`SnapshotError.reason`, counted by the worker); the worker then
rebuilds the state from the sequenced log.

The state is taken as a whole: it is small (about 200 bytes per open claim, measured in
benchmarks/replay_throughput.py) and taking it whole is what keeps the engine's
state and the offsets it reflects consistent. It is cut into chunks (brokers refuse records
over about 1 MB) and written into one of two slots, the manifest last: a crash while a
snapshot is written leaves the previous one intact, and the keys stay bounded, so a
compacted changelog keeps exactly the latest snapshot.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import zlib
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from claimflow.live import state_codec

FORMAT = 3  # 3: state_codec msgpack, signed (2 was a pickle: refused, never loaded)
MANIFEST = "manifest"
CHUNK_BYTES = 256 * 1024
MAX_BYTES = 1 << 30  # a decompressed snapshot larger than this is refused (a zip bomb)
REASONS = ("format", "missing", "damaged", "integrity", "unsigned", "content")


class SnapshotError(Exception):
    """A snapshot that cannot be read back; `reason` is one of REASONS (a metric label)."""

    def __init__(self, message: str, reason: str = "damaged") -> None:
        super().__init__(message)
        self.reason = reason


def _signature(key: bytes | None, manifest: dict[str, Any], blob: bytes) -> tuple[str, str]:
    """(algorithm, hex digest) over what the manifest says and the compressed state."""
    head = json.dumps(
        [
            manifest["format"],
            manifest["slot"],
            manifest["chunks"],
            manifest["size"],
            manifest["label"],
        ],
        separators=(",", ":"),
    ).encode()
    if key is None:
        return "sha256", hashlib.sha256(head + b"\n" + blob).hexdigest()
    return "hmac-sha256", hmac.new(key, head + b"\n" + blob, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class SnapshotInfo:
    slot: int
    chunks: int
    size: int  # compressed bytes
    label: str  # what the writer said about it (the offset it reflects)


def save(
    store: MutableMapping[str, bytes],
    state: Any,
    label: str,
    chunk_bytes: int = CHUNK_BYTES,
    key: bytes | None = None,
) -> SnapshotInfo:
    """Write `state` (types claimflow/live/state_codec.py writes; StateCodecError otherwise)."""
    blob = zlib.compress(state_codec.encode(state), 1)
    previous = _manifest(store)
    slot = 1 - previous["slot"] if previous else 0
    old_chunks = _chunks_in(store, slot)
    chunks = max(1, -(-len(blob) // chunk_bytes))
    for i in range(chunks):
        store[f"{slot}/{i}"] = blob[i * chunk_bytes : (i + 1) * chunk_bytes]
    for i in range(chunks, old_chunks):
        del store[f"{slot}/{i}"]
    manifest = {"format": FORMAT, "slot": slot, "chunks": chunks, "size": len(blob), "label": label}
    manifest["algorithm"], manifest["digest"] = _signature(key, manifest, blob)
    store[MANIFEST] = json.dumps(manifest).encode()
    return SnapshotInfo(slot, chunks, len(blob), label)


def load(
    store: MutableMapping[str, bytes], key: bytes | None = None
) -> tuple[Any, SnapshotInfo] | None:
    """The latest snapshot and what it is, or None when there is none. Nothing in the store
    is decoded before its signature (with `key`) or digest has been checked."""
    manifest = _manifest(store)
    if manifest is None:
        return None
    if manifest.get("format") != FORMAT:
        raise SnapshotError(
            f"snapshot format {manifest.get('format')!r}, this version reads {FORMAT}", "format"
        )
    slot, chunks, size = manifest.get("slot"), manifest.get("chunks"), manifest.get("size")
    if (
        slot not in (0, 1)
        or not isinstance(chunks, int)
        or not isinstance(size, int)
        or not 1 <= chunks <= 1 + MAX_BYTES // 1024
        or not isinstance(manifest.get("label"), str)
    ):
        raise SnapshotError("snapshot manifest is not one this version writes", "format")
    try:
        parts = [store[f"{slot}/{i}"] for i in range(chunks)]
    except KeyError as exc:
        raise SnapshotError(f"snapshot chunk {exc} is missing", "missing") from exc
    if not all(isinstance(p, bytes) for p in parts):
        raise SnapshotError("snapshot chunk is not bytes", "damaged")
    blob = b"".join(parts)
    if len(blob) != size:
        raise SnapshotError(f"snapshot is {len(blob)} bytes, its manifest says {size}")
    algorithm, digest = _signature(key, manifest, blob)
    if manifest.get("algorithm") != algorithm:
        raise SnapshotError(
            f"snapshot signed with {manifest.get('algorithm')!r}, this worker expects "
            f"{algorithm!r} (CLAIMFLOW_SNAPSHOT_KEY set on one side only?)",
            "unsigned",
        )
    if not hmac.compare_digest(str(manifest.get("digest", "")), digest):
        raise SnapshotError(f"snapshot {algorithm} does not match its content", "integrity")
    try:
        inflate = zlib.decompressobj()
        raw = inflate.decompress(blob, MAX_BYTES)
        if inflate.unconsumed_tail:
            raise SnapshotError(f"snapshot inflates beyond {MAX_BYTES} bytes", "damaged")
        state = state_codec.decode(raw)
    except zlib.error as exc:
        raise SnapshotError(f"snapshot does not decompress: {exc}") from None
    except state_codec.StateCodecError as exc:
        raise SnapshotError(f"snapshot content refused: {exc}", "content") from None
    return state, SnapshotInfo(slot, chunks, len(blob), manifest["label"])


def is_snapshot_key(key: object) -> bool:
    """Whether `key` is one `save` writes: the manifest or a chunk of slot 0 or 1. Anything
    else read back from the store's changelog was written by someone else: it is skipped
    and counted (streams/table_keys.py), never decoded as state."""
    if key == MANIFEST:
        return True
    if not isinstance(key, str) or key[:2] not in ("0/", "1/"):
        return False
    chunk = key[2:]
    return chunk.isascii() and chunk.isdigit() and len(chunk) <= 7


def _manifest(store: MutableMapping[str, bytes]) -> dict[str, Any] | None:
    raw = store.get(MANIFEST)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise SnapshotError(f"snapshot manifest is not JSON: {exc!r}", "format") from None
    if not isinstance(data, dict):
        raise SnapshotError("snapshot manifest is not an object", "format")
    return data


def _chunks_in(store: MutableMapping[str, bytes], slot: int) -> int:
    n = 0
    while f"{slot}/{n}" in store:
        n += 1
    return n
