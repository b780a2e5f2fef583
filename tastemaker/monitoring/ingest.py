"""Stream ingestion: PutEvents-shaped records from an Amazon Kinesis stream or a Redis Stream into an event tracker.

A record is one PutEvents request body (`{"trackingId", "userId", "sessionId", "eventList": [...]}`; a missing
trackingId is the consumer's default). Records are read in batches, shard by shard; each is handed to `handle`
(which validates it against botocore's PutEvents model and stores it through the PutEvents path), and after a
batch the shard's checkpoint (the last position handled) is saved in the metadata store. After a crash the
consumer resumes at the checkpoint, so the records of an unfinished batch are handled again: delivery is at least
once, and the events table's unique (dataset group, eventId) makes the replay store nothing twice. Events without
an eventId get one derived from their stream position (`ingest-<sha1 of shard, position, index>`), so they too
are stored once. A record that cannot be stored (not JSON, invalid, unknown trackingId) goes to the dead-letter
stream with the reason, and the consumer moves on.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from tastemaker.errors import InvalidInputException, TastemakerError
from tastemaker.services import Services
from tastemaker.store import checkpoints

log = logging.getLogger("tastemaker.ingest")
Handler = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Record:
    shard: str
    position: str
    data: bytes


class Source(Protocol):
    """A stream read from checkpoints: `read` returns the next batch of one shard (empty when caught up)."""

    consumer: str

    def read(self, positions: dict[str, str], limit: int) -> list[Record]: ...

    def dead_letter(self, record: Record, reason: str) -> None: ...


def _dead_letter_body(record: Record, reason: str) -> bytes:
    try:
        data: Any = record.data.decode()
    except UnicodeDecodeError:
        data = {"base64": base64.b64encode(record.data).decode()}
    return orjson.dumps({"reason": reason, "shard": record.shard, "position": record.position, "data": data})


class KinesisSource:
    """The shards of one Kinesis stream (boto3), read after their checkpoints (else from TRIM_HORIZON)."""

    def __init__(self, client: Any, stream: str, dead_letter_stream: str | None) -> None:
        self.client = client
        self.stream = stream
        self.dead_letter_stream = dead_letter_stream
        self.consumer = f"kinesis:{stream}"
        self._iterators: dict[str, str | None] = {}
        self._next = 0

    def _shards(self) -> list[str]:
        shards: list[str] = []
        kwargs: dict[str, Any] = {"StreamName": self.stream}
        while True:
            page = self.client.list_shards(**kwargs)
            shards += [s["ShardId"] for s in page["Shards"]]
            if not page.get("NextToken"):
                return shards
            kwargs = {"NextToken": page["NextToken"]}

    def read(self, positions: dict[str, str], limit: int) -> list[Record]:
        shards = self._shards()
        for _ in range(len(shards)):
            shard = shards[self._next % len(shards)]
            self._next += 1
            if shard not in self._iterators:
                args: dict[str, Any] = {"StreamName": self.stream, "ShardId": shard}
                if shard in positions:
                    args.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=positions[shard])
                else:
                    args.update(ShardIteratorType="TRIM_HORIZON")
                self._iterators[shard] = self.client.get_shard_iterator(**args)["ShardIterator"]
            iterator = self._iterators[shard]
            if iterator is None:  # a closed shard, read to its end
                continue
            page = self.client.get_records(ShardIterator=iterator, Limit=limit)
            self._iterators[shard] = page.get("NextShardIterator")
            if page["Records"]:
                return [Record(shard, r["SequenceNumber"], bytes(r["Data"])) for r in page["Records"]]
        return []

    def dead_letter(self, record: Record, reason: str) -> None:
        if self.dead_letter_stream:
            self.client.put_record(StreamName=self.dead_letter_stream, Data=_dead_letter_body(record, reason),
                                   PartitionKey=record.shard)


class RedisStreamSource:
    """One Redis Stream (XREAD after the checkpointed id); its single "shard" is the stream key."""

    def __init__(self, client: Any, key: str, dead_letter_key: str | None) -> None:
        self.client = client
        self.key = key
        self.dead_letter_key = dead_letter_key
        self.consumer = f"redis:{key}"

    def read(self, positions: dict[str, str], limit: int) -> list[Record]:
        found = self.client.xread({self.key: positions.get(self.key, "0-0")}, count=limit, block=200)
        records: list[Record] = []
        for _, entries in found or []:
            for entry_id, fields in entries:
                data = fields.get(b"data", fields.get("data", b""))
                records.append(Record(self.key, entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
                                      data if isinstance(data, bytes) else str(data).encode()))
        return records

    def dead_letter(self, record: Record, reason: str) -> None:
        if self.dead_letter_key:
            self.client.xadd(self.dead_letter_key, {"data": _dead_letter_body(record, reason)})


def parse(record: Record, default_tracking_id: str | None) -> dict[str, Any]:
    """The record as a PutEvents request, with its default trackingId and position-derived eventIds."""
    try:
        body = orjson.loads(record.data)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputException(f"The record is not JSON: {exc}.") from exc
    if not isinstance(body, dict):
        raise InvalidInputException("The record is not a JSON object in the PutEvents request shape.")
    if default_tracking_id and "trackingId" not in body:
        body["trackingId"] = default_tracking_id
    events = body.get("eventList")
    if isinstance(events, list):
        for index, event in enumerate(events):
            if isinstance(event, dict) and not event.get("eventId"):
                digest = hashlib.sha1(f"{record.shard}/{record.position}/{index}".encode()).hexdigest()
                event["eventId"] = f"ingest-{digest}"
    return body


def run(services: Services, source: Source, handle: Handler, *, default_tracking_id: str | None = None,
        batch: int = 100, idle_exit_seconds: float | None = None, should_stop: Callable[[], bool] = lambda: False,
        ) -> dict[str, int]:
    """Consume until stopped (or idle for `idle_exit_seconds`); returns how many records were stored and refused."""
    with services.read_engine.connect() as conn:
        positions = checkpoints.load(conn, source.consumer)
    counts = {"stored": 0, "dead_lettered": 0}
    idle_since = time.monotonic()
    while not should_stop():
        records = source.read(positions, batch)
        if not records:
            if idle_exit_seconds is not None and time.monotonic() - idle_since >= idle_exit_seconds:
                break
            time.sleep(0.2)
            continue
        idle_since = time.monotonic()
        for record in records:
            try:
                handle(parse(record, default_tracking_id))
                counts["stored"] += 1
            except TastemakerError as exc:
                counts["dead_lettered"] += 1
                log.warning("record %s/%s refused: %s", record.shard, record.position, exc.message)
                source.dead_letter(record, f"{exc.code}: {exc.message}")
        last = records[-1]
        with services.engine.begin() as conn:
            checkpoints.save(conn, source.consumer, last.shard, last.position)
        positions[last.shard] = last.position
    return counts
