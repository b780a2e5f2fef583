"""Tags on any resource: TagResource, UntagResource, ListTagsForResource."""

from __future__ import annotations

from typing import Any

from tastemaker.control.common import MAX_TAG_KEYS, check_tags
from tastemaker.control.context import RequestContext
from tastemaker.control.registry import operation
from tastemaker.errors import TooManyTagKeysException
from tastemaker.store import resources


@operation("TagResource")
def tag_resource(ctx: RequestContext, *, resource_arn: str, tags: list[dict[str, str]]) -> dict[str, Any]:
    with ctx.engine.begin() as conn:
        resources.get(conn, resource_arn, lock=True)
        current = {t["tag_key"] for t in resources.get_tags(conn, resource_arn)}
        new = [t for t in tags if t["tag_key"] not in current]
        check_tags(len(current), new)
        resources.put_tags(conn, resource_arn, tags)
    return {}


@operation("UntagResource")
def untag_resource(ctx: RequestContext, *, resource_arn: str, tag_keys: list[str]) -> dict[str, Any]:
    if len(tag_keys) > MAX_TAG_KEYS:
        raise TooManyTagKeysException(f"At most {MAX_TAG_KEYS} tag keys can be removed in one request.")
    with ctx.engine.begin() as conn:
        resources.get(conn, resource_arn, lock=True)
        resources.remove_tags(conn, resource_arn, tag_keys)
    return {}


@operation("ListTagsForResource")
def list_tags_for_resource(ctx: RequestContext, *, resource_arn: str) -> dict[str, Any]:
    with ctx.read_engine.connect() as conn:
        resources.get(conn, resource_arn)
        return {"tags": resources.get_tags(conn, resource_arn)}
