"""Schemas: CreateSchema, DescribeSchema, ListSchemas, DeleteSchema (schemas have no status)."""

from __future__ import annotations

from typing import Any

from tastemaker.arns import build_arn
from tastemaker.control.common import describe, list_page, name_key
from tastemaker.control.context import RequestContext
from tastemaker.control.registry import operation
from tastemaker.data.schemas import parse_schema
from tastemaker.errors import ResourceInUseException
from tastemaker.store import resources
from tastemaker.store.records import Dataset, Schema

KIND = "schema"


@operation("CreateSchema")
def create_schema(ctx: RequestContext, *, name: str, schema: str, domain: str | None = None) -> dict[str, Any]:
    parse_schema(schema, domain)  # raises InvalidInputException naming the field and the rule
    arn = build_arn(KIND, ctx.region, ctx.account, name)
    body = {"name": name, "schema_arn": arn, "schema": schema, "domain": domain}
    with ctx.engine.begin() as conn:
        resources.insert(conn, arn=arn, kind=KIND, body=body, status=None, name_key=name_key(ctx, name))
    return {"schema_arn": arn}


@operation("DescribeSchema")
def describe_schema(ctx: RequestContext, *, schema_arn: str) -> dict[str, Any]:
    return describe(ctx, KIND, "schema", schema_arn)


@operation("ListSchemas")
def list_schemas(ctx: RequestContext, *, next_token: str | None = None,
                 max_results: int | None = None) -> dict[str, Any]:
    return list_page(ctx, KIND, "schemas", next_token=next_token, max_results=max_results)


@operation("DeleteSchema")
def delete_schema(ctx: RequestContext, *, schema_arn: str) -> dict[str, Any]:
    with ctx.engine.begin() as conn:
        resources.get(conn, schema_arn, KIND, lock=True)
        users = [d for d in resources.children(conn, kind="dataset") if Dataset.of(d).schema_arn == schema_arn]
        if users:
            raise ResourceInUseException(
                f"Cannot delete schema {schema_arn}: it is used by {len(users)} dataset(s) "
                f"({', '.join(d.arn for d in users[:3])}). Delete them or move them to another schema first.")
        resources.delete(conn, schema_arn)
    return {}


def load_schema(conn: Any, schema_arn: str) -> tuple[resources.Resource, Any]:
    """The schema resource and its parsed form."""
    res = resources.get(conn, schema_arn, KIND)
    return res, parse_schema(Schema.of(res).schema, Schema.of(res).domain)
