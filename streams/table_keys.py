"""Keys of the detector-state table as read back from its changelog topic (issue 14 item 7).

Faust decodes every changelog key on take-over with the table's key codec. With the stock
JSON codec, one record the worker never wrote (a key that is not JSON, not text, or JSON
that is not a string, such as an object: unhashable) raised on every recovery attempt, and
take-over never finished. This codec writes exactly what the JSON codec writes (existing
changelogs stay readable) and reads any key: one `claimflow.live.snapshots` writes comes back as
itself; anything else becomes `foreign/<sha256 prefix>`, a key that no snapshot reads, and
is counted once per distinct key (`claimflow_foreign_records_skipped_total`). A record with
no key never reaches a codec: it is dropped before the store applies it, and counted.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from typing import Any

from faust.serializers import codecs

from claimflow.live.snapshots import is_snapshot_key

log = logging.getLogger("claimflow.table_keys")
NAME = "claimflow-table-key"
FOREIGN_PREFIX = "foreign/"
_REMEMBERED = 10_000  # distinct foreign keys remembered to count each once; then every read


class TableKeyCodec(codecs.json):
    """The JSON codec, except that no key read back is fatal."""

    def __init__(self) -> None:
        super().__init__()
        self.foreign = 0
        self._seen: set[str] = set()

    def _loads(self, s: bytes) -> Any:
        try:
            key = super()._loads(s)
        except (ValueError, TypeError, RecursionError):  # UnicodeDecodeError is a ValueError
            key = None
        if isinstance(key, str) and is_snapshot_key(key):
            return key
        name = FOREIGN_PREFIX + hashlib.sha256(bytes(s)).hexdigest()[:16]
        if name not in self._seen:
            if len(self._seen) < _REMEMBERED:
                self._seen.add(name)
            self.foreign += 1
            log.warning(
                "skipped a record in the detector-state changelog that claimflow did not "
                "write (key %r): kept as %s, never read as state",
                bytes(s[:64]),
                name,
            )
        return name


CODEC = TableKeyCodec()
codecs.register(NAME, CODEC)


def tolerate_foreign_keys(table: Any) -> None:
    """Have `table` (a Faust table of `snapshots` keys, before the worker starts) read its
    changelog keys with CODEC, and skip changelog records without a key (the rocksdb store
    refused them, "raw mode only support bytes", on every recovery attempt). Its changelog
    topic was made with the table, so it is made again with the new codec (same name, same
    settings)."""
    table.key_serializer = NAME
    table.changelog_topic = table._new_changelog_topic()
    apply = table.apply_changelog_batch

    def apply_keyed(batch: Iterable[Any]) -> None:
        events = list(batch)
        keyed = [e for e in events if e.message.key is not None]
        if len(keyed) < len(events):
            CODEC.foreign += len(events) - len(keyed)
            log.warning(
                "skipped %d record(s) without a key in the detector-state changelog: "
                "claimflow did not write them",
                len(events) - len(keyed),
            )
        apply(keyed)

    table.apply_changelog_batch = apply_keyed
