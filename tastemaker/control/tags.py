"""Tags on any resource: TagResource, UntagResource, ListTagsForResource."""

from __future__ import annotations

from typing import Any

from tastemaker.control.common import MAX_TAG_KEYS, RESERVED_TAG_PREFIX, check_tags
from tastemaker.control.context import RequestContext
from tastemaker.control.registry import operation
from tastemaker.errors import InvalidInputException, TooManyTagKeysException
from tastemaker.store import resources

# The kinds whose Create* operation takes tags; schemas and metric attributions cannot be tagged.
TAGGABLE = frozenset({
    "dataset_group", "dataset", "dataset_import_job", "dataset_export_job", "data_deletion_job", "solution",
    "solution_version", "campaign", "event_tracker", "filter", "recommender", "batch_inference_job",
    "batch_segment_job",
})


def _taggable(res: resources.Resource) -> None:
    if res.kind not in TAGGABLE:
        raise InvalidInputException(
            f"{res.arn} is a {resources.KIND_LABELS.get(res.kind, res.kind)}, which cannot be tagged; tags go on "
            "dataset groups, datasets, jobs, solutions, solution versions, campaigns, event trackers, filters and "
            "recommenders.")


@operation("TagResource")
def tag_resource(ctx: RequestContext, *, resource_arn: str, tags: list[dict[str, str]]) -> dict[str, Any]:
    with ctx.engine.begin() as conn:
        _taggable(resources.get(conn, resource_arn, lock=True))
        current = {t["tag_key"] for t in resources.get_tags(conn, resource_arn)}
        new = [t for t in tags if t["tag_key"] not in current]
        check_tags(len(current), new)
        resources.put_tags(conn, resource_arn, tags)
    return {}


@operation("UntagResource")
def untag_resource(ctx: RequestContext, *, resource_arn: str, tag_keys: list[str]) -> dict[str, Any]:
    if len(tag_keys) > MAX_TAG_KEYS:
        raise TooManyTagKeysException(f"At most {MAX_TAG_KEYS} tag keys can be removed in one request.")
    reserved = sorted(k for k in tag_keys if k.lower().startswith(RESERVED_TAG_PREFIX))
    if reserved:
        raise InvalidInputException(f"Tag keys starting with '{RESERVED_TAG_PREFIX}' are reserved for AWS use and "
                                    f"cannot be removed: {', '.join(reserved)}.")
    with ctx.engine.begin() as conn:
        _taggable(resources.get(conn, resource_arn, lock=True))
        resources.remove_tags(conn, resource_arn, tag_keys)
    return {}


@operation("ListTagsForResource")
def list_tags_for_resource(ctx: RequestContext, *, resource_arn: str) -> dict[str, Any]:
    with ctx.read_engine.connect() as conn:
        resources.get(conn, resource_arn)
        return {"tags": resources.get_tags(conn, resource_arn)}
