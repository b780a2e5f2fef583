"""The schema editor: every schema error is shown at its place (line, column and the offending value marked),
while typing and after a refused create, from the JSON pointer schema validation reports; and the form suggests
a schema per group domain that passes the domain's rules.

Set TASTEMAKER_CONSOLE_SCREENSHOTS=DIR to save the editor's screenshot (docs/console.md)."""

from __future__ import annotations

import html
import json
import re
import time
from typing import Any

import pytest

from tastemaker.cli.local_server import LocalServer
from tastemaker.console.app import SUGGESTED_SCHEMAS
from tastemaker.console.json_text import locate, mark_at
from tastemaker.data.schemas import check_schema_for_dataset, parse_schema
from tests.console.test_browser import by_css, go, shot
from tests.console.test_sessions import csrf, sign_in
from tests.e2e.util import wait_status


def pretty(**changes: Any) -> str:
    """The suggested Interactions schema as the editor shows it (one member a line), with changes to its fields:
    {index: new field or None to drop it}, or top-level members."""
    schema = json.loads(json.dumps(SUGGESTED_SCHEMAS[None]["Interactions"]))
    fields = changes.pop("fields", {})
    schema["fields"] = [fields.get(k, f) for k, f in enumerate(schema["fields"]) if fields.get(k, f) is not None]
    return json.dumps({**schema, **changes}, indent=1)


@pytest.mark.parametrize(("domain", "kind"), [(domain, kind) for domain, kinds in SUGGESTED_SCHEMAS.items()
                                               for kind in kinds])
def test_each_suggested_schema_passes_its_domains_rules(domain: str | None, kind: str) -> None:
    check_schema_for_dataset(parse_schema(json.dumps(SUGGESTED_SCHEMAS[domain][kind]), domain), kind, domain)


def test_a_pointer_is_located_in_the_text() -> None:
    text = pretty(fields={2: {"name": "TIMESTAMP", "type": "longg"}})
    mark = locate(text, "/fields/2/type")
    assert mark is not None and text[mark.start:mark.end] == '"longg"'
    lines = text.splitlines()
    assert lines[mark.line - 1][mark.column - 1:].startswith('"longg"')
    fields = locate(text, "/fields")  # a list over several lines: its member name is marked
    assert fields is not None and text[fields.start:fields.end] == '"fields"'
    missing = locate(text, "/fields/2/categorical")  # no such member: the field, over several lines: its "{"
    assert missing is not None and text[missing.start:missing.end] == "{"
    one_line = '{"fields": [{"name": "A"}, {"name": "B", "type": "x"}]}'
    field = locate(one_line, "/fields/1/categorical")  # the field on one line: marked whole
    assert field is not None and one_line[field.start:field.end] == '{"name": "B", "type": "x"}'
    assert (field.line, field.column) == (1, 28)
    assert locate('{"a": 1, "a": 2}', "/a") == mark_at('{"a": 1, "a": 2}', 14)  # the last of repeated names
    assert locate("{not json", "/a") is None and locate('{"a/b": 1}', "/a~1b") == mark_at('{"a/b": 1}', 8)


@pytest.fixture(scope="module")
def checked_group(console_server: LocalServer) -> str:
    return _group(console_server, "console-schema-check")


@pytest.mark.parametrize(("text", "kind", "marked", "message"), [
    (pretty(fields={2: {"name": "TIMESTAMP", "type": "longg"}}), "Interactions", '"longg"', 'unknown type "longg"'),
    (pretty(fields={1: None}), "Interactions", '"fields"', "missing required field(s): ITEM_ID"),
    (pretty(type="recrd"), "Interactions", '"recrd"', 'top-level "type" must be "record"'),
    (pretty(fields={3: {"name": "EVENT-TYPE", "type": "string"}}), "Interactions", '"EVENT-TYPE"',
     'invalid name "EVENT-TYPE"'),
    (pretty(fields={2: {"name": "TIMESTAMP", "type": "int"}}), "Interactions", '"int"',
     "Field TIMESTAMP is required in the Interactions schema and must be long"),
    (pretty(fields={3: {"name": "EVENT_TYPE", "type": ["null", "strin"]}}), "Interactions", '"strin"',
     'unknown type "strin"'),
    (pretty().replace('"TIMESTAMP",', '"TIMESTAMP"', 1), "Interactions", '"', "not valid JSON"),
])
def test_the_schema_check_answers_with_the_errors_place(console_server: LocalServer, checked_group: str, text: str,
                                                        kind: str, marked: str, message: str) -> None:
    srv, group = console_server, checked_group
    client = sign_in(srv, srv.access_key, srv.secret_key)
    token = csrf(client.get("/console/group", params={"arn": group}).text)
    answer = client.post("/console/schema/check", params={"arn": group},
                         data={"csrf": token, "schema": text, "datasetType": kind}).json()
    assert not answer["ok"] and message in answer["message"], answer
    assert text[answer["start"]:answer["end"]] == marked
    line = text.splitlines()[answer["line"] - 1]
    assert line[answer["column"] - 1:].startswith(marked), (line, answer)
    ok = client.post("/console/schema/check", params={"arn": group},
                     data={"csrf": token, "schema": pretty(), "datasetType": "Interactions"}).json()
    assert ok == {"ok": True, "message": "The schema is valid for this group's Interactions dataset."}
    refused = client.post("/console/schema/check", params={"arn": group},
                          data={"csrf": "stale", "schema": pretty(), "datasetType": "Interactions"})
    assert refused.status_code == 403


def test_a_refused_create_marks_the_error_in_the_form(console_server: LocalServer) -> None:
    srv = console_server
    client = sign_in(srv, srv.access_key, srv.secret_key)
    group = _group(srv, "console-schema-create")
    text = pretty(fields={1: None})  # passes CreateSchema, refused by CreateDataset's rules for Interactions
    page = client.post("/console/group", params={"arn": group}, data={
        "csrf": csrf(client.get("/console/group", params={"arn": group}).text), "action": "dataset",
        "datasetType": "Interactions", "name": "refused-dataset", "schema": text})
    assert page.status_code == 400
    error = re.search(r'<p class="error" role="alert" id="error-dataset">(.*?)</p>', page.text)
    mark = locate(text, "/fields")
    assert error and mark and html.unescape(error.group(1)) == (
        f"Line {mark.line}, column {mark.column}: The Interactions schema is missing required field(s): ITEM_ID.")
    where = re.search(r'<pre class="where" id="schema-where">(.*?)</pre>', page.text, re.DOTALL)
    assert where and html.unescape(re.sub(r"</?mark>", "", where.group(1))) == text  # the text, with a mark
    assert html.unescape(re.search(r"<mark>(.*?)</mark>", where.group(1)).group(1)) == '"fields"'  # type: ignore[union-attr]
    assert html.unescape(re.search(r'id="dataset-schema"[^>]*>(.*?)</textarea>', page.text,  # type: ignore[union-attr]
                                   re.DOTALL).group(1)) == text  # what was typed is kept
    pages = srv.client("personalize").get_paginator("list_schemas").paginate()
    names = [s["name"] for page in pages for s in page["schemas"]]
    assert not [n for n in names if n.startswith("refused-dataset-")]  # its schema was removed


@pytest.mark.slow
def test_the_editor_marks_the_error_while_typing(browser: Any, console_server: LocalServer) -> None:
    d, srv = browser, console_server
    group = _group(srv, "console-schema-live", domain="VIDEO_ON_DEMAND")
    d.get(srv.url + "/console/signin")
    if "/console/signin" in d.current_url:
        by_css(d, "#access_key_id").send_keys(srv.access_key)
        by_css(d, "#secret_access_key").send_keys(srv.secret_key)
        go(d, "#signin")
    d.get(f"{srv.url}/console/group?arn={group}")
    from selenium.webdriver.support.ui import Select

    Select(by_css(d, "#dataset-type")).select_by_visible_text("Items")  # the domain's Items schema is suggested
    suggested = json.loads(by_css(d, "#dataset-schema").get_attribute("value"))
    assert suggested == SUGGESTED_SCHEMAS["VIDEO_ON_DEMAND"]["Items"]
    assert _live(d, "valid") == "The schema is valid for this group's Items dataset."
    box = by_css(d, "#dataset-schema")
    text = box.get_attribute("value")
    at = text.index('"CREATION_TIMESTAMP"')
    d.execute_script("arguments[0].focus(); arguments[0].setSelectionRange(arguments[1], arguments[2]);",
                     box, at + 1, at + 2)
    box.send_keys("X")  # a typo: XREATION_TIMESTAMP, so the VIDEO_ON_DEMAND Items rule misses the field
    message = _live(d, "missing")
    assert message.startswith("Line ") and "missing required field(s): CREATION_TIMESTAMP" in message, message
    assert by_css(d, "#schema-where mark").text == '"fields"' and by_css(d, "#schema-where").is_displayed()
    assert "error" in by_css(d, "#schema-live").get_attribute("class")
    d.execute_script("document.getElementById('create-dataset').scrollIntoView();")
    shot(d, "schema-live")


def _live(driver: Any, word: str) -> str:
    deadline = time.monotonic() + 30
    while word not in by_css(driver, "#schema-live").text and time.monotonic() < deadline:
        time.sleep(0.2)
    return str(by_css(driver, "#schema-live").text)


def _group(srv: LocalServer, name: str, domain: str | None = None) -> str:
    personalize = srv.client("personalize")
    arn: str = personalize.create_dataset_group(name=f"{name}-{time.monotonic_ns() % 10**8}",
                                                **({"domain": domain} if domain else {}))["datasetGroupArn"]
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=arn), "datasetGroup")
    return arn


def test_each_datasets_schema_can_be_read_on_the_group_page(console_server: LocalServer) -> None:
    srv = console_server
    personalize = srv.client("personalize")
    group = _group(srv, "console-schema-view")
    schema = SUGGESTED_SCHEMAS[None]["Items"]
    schema_arn = personalize.create_schema(name=f"viewed-{time.monotonic_ns() % 10**8}",
                                           schema=json.dumps(schema))["schemaArn"]
    personalize.create_dataset(name="viewed-items", datasetGroupArn=group, datasetType="Items", schemaArn=schema_arn)
    page = sign_in(srv, srv.access_key, srv.secret_key).get("/console/group", params={"arn": group}).text
    shown = re.findall(r'<details class="schema-view"><summary>([^<]*)</summary><pre>(.*?)</pre>', page, re.DOTALL)
    assert [(name, json.loads(html.unescape(text))) for name, text in shown] == [
        (schema_arn.rsplit("/", 1)[-1], schema)]
    types = page[page.index('id="dataset-type"'):page.index("</select>", page.index('id="dataset-type"'))]
    assert re.findall(r">(\w+)</option>", types) == ["Interactions", "Users", "Actions", "Action_Interactions"]
