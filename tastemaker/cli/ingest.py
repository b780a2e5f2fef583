"""`tastemaker ingest`: feed an event tracker from a Kinesis stream or a Redis Stream (tastemaker.monitoring.ingest).

Each record is validated against botocore's PutEvents model, exactly as the API validates a PutEvents call,
and stored through the same operation; checkpoints live in the metadata store named by --data-dir/--db-url.
Kinesis is reached through boto3 (its endpoint, region and credentials from the standard AWS settings, or
--kinesis-endpoint-url).
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from tastemaker.cli.main import _add_state_flags

    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--kinesis-stream", help="the Kinesis stream to read")
    source.add_argument("--redis-stream", help="the Redis Stream key to read (records in the field 'data')")
    parser.add_argument("--tracking-id", help="the event tracker of records that name none")
    parser.add_argument("--dead-letter-stream", help="where refused records go with their reason "
                        "(a Kinesis stream, or a Redis Stream key with --redis-stream)")
    parser.add_argument("--kinesis-endpoint-url", help="Kinesis endpoint (default: boto3's)")
    parser.add_argument("--region", default=None, help="AWS region of the Kinesis stream (default: boto3's)")
    parser.add_argument("--redis-url", default=None, help="Redis of --redis-stream (default TASTEMAKER_REDIS_URL)")
    parser.add_argument("--batch", type=int, default=100, help="records per read and checkpoint (default 100)")
    parser.add_argument("--until-idle", type=float, default=None, metavar="SECONDS",
                        help="exit once nothing has arrived for this long (default: run until stopped)")
    _add_state_flags(parser)


def cmd_ingest(args: argparse.Namespace) -> int:
    from tastemaker.api import service_models
    from tastemaker.api.convert import to_python
    from tastemaker.api.validation import validate_input
    from tastemaker.cli.main import _settings
    from tastemaker.cli.wiring import build_services
    from tastemaker.control.context import RequestContext
    from tastemaker.monitoring import ingest
    from tastemaker.realtime.events_api import put_events

    settings = _settings(args)
    services = build_services(settings, serves_requests=False)
    info = service_models.operation_by_name("personalize-events", "PutEvents")
    assert info is not None
    ctx = RequestContext(services, settings.default_region)

    def handle(body: dict[str, Any]) -> None:
        put_events(ctx, **to_python(info.input_shape, validate_input(info.model, body)))

    source: ingest.Source
    if args.kinesis_stream:
        import boto3

        client = boto3.client("kinesis", endpoint_url=args.kinesis_endpoint_url, region_name=args.region)
        source = ingest.KinesisSource(client, args.kinesis_stream, args.dead_letter_stream)
    else:
        import redis

        url = args.redis_url or settings.redis_url
        if not url:
            print("--redis-stream needs --redis-url (or TASTEMAKER_REDIS_URL)")
            return 2
        source = ingest.RedisStreamSource(redis.Redis.from_url(url), args.redis_stream, args.dead_letter_stream)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    counts = ingest.run(services, source, handle, default_tracking_id=args.tracking_id, batch=args.batch,
                        idle_exit_seconds=args.until_idle, should_stop=stop.is_set)
    print(json.dumps(counts))
    return 0
