"""Console sign-in over plain HTTP against a live server: cookies, CSRF, sign-out, read-only keys."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx

from tastemaker.cli.local_server import LocalServer
from tastemaker.console.sessions import Sessions
from tests.e2e.test_access_keys import create_key
from tests.e2e.util import wait_status

READ_ONLY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
    "personalize:List*", "personalize:Describe*", "personalize:Get*"]}]}


def sign_in(srv: LocalServer, key: str, secret: str) -> httpx.Client:
    """Sign in; a key made a moment ago is accepted once the server re-reads its keys (every second)."""
    client = httpx.Client(base_url=srv.url, follow_redirects=False)
    deadline = time.monotonic() + 30
    while True:
        reply = client.post("/console/signin", data={"access_key_id": key, "secret_access_key": secret})
        if reply.status_code != 401 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert reply.status_code == 303, reply.text
    return client


def csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def test_pages_need_a_session_and_a_wrong_secret_is_refused(console_server: LocalServer) -> None:
    anonymous = httpx.get(console_server.url + "/console/groups", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].endswith("/console/signin")
    refused = httpx.post(console_server.url + "/console/signin",
                         data={"access_key_id": console_server.access_key, "secret_access_key": "wrong"})
    assert refused.status_code == 401 and "do not match" in refused.text
    assert "set-cookie" not in refused.headers
    style = httpx.get(console_server.url + "/console/static/console.css")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")


def test_session_cookie_flags_csrf_and_sign_out(console_server: LocalServer) -> None:
    client = sign_in(console_server, console_server.access_key, console_server.secret_key)
    cookie = client.cookies.jar
    header = next(iter(cookie))
    assert header.name == "tastemaker_console" and header.path == "/console"
    assert header.has_nonstandard_attr("HttpOnly") and header.get_nonstandard_attr("SameSite") == "strict"

    page = client.get("/console/groups")
    assert page.status_code == 200 and 'id="create-group"' in page.text
    forged = client.post("/console/groups", data={"name": "forged-group"})
    assert forged.status_code == 403 and "CSRF" in forged.text
    stale = client.post("/console/groups", data={"name": "forged-group", "csrf": "x" * 43})
    assert stale.status_code == 403
    listed = console_server.client("personalize").list_dataset_groups()["datasetGroups"]
    assert "forged-group" not in [g["name"] for g in listed]

    bad = client.post("/console/groups", data={"name": "bad name!", "csrf": csrf(page.text)})
    assert bad.status_code == 400 and 'role="alert"' in bad.text and "name" in bad.text

    token = client.cookies["tastemaker_console"]
    out = client.post("/console/signout", data={"csrf": csrf(page.text)})
    assert out.status_code == 303
    reused = httpx.get(console_server.url + "/console/groups", cookies={"tastemaker_console": token},
                       follow_redirects=False)
    assert reused.status_code == 303 and reused.headers["location"].endswith("/console/signin")


def test_a_read_only_key_sees_no_change_buttons_and_cannot_change(console_server: LocalServer) -> None:
    key, secret = create_key(console_server.data_dir, "console-reader", READ_ONLY)
    client = sign_in(console_server, key, secret)
    page = client.get("/console/groups")
    assert page.status_code == 200 and "read-only" in page.text
    assert 'id="create-group"' not in page.text
    denied = client.post("/console/groups", data={"name": "reader-group", "csrf": csrf(page.text)})
    assert denied.status_code == 400 and "not authorized to perform: personalize:CreateDatasetGroup" in denied.text


def test_a_read_only_key_sees_a_group_without_any_form_that_changes_it(console_server: LocalServer) -> None:
    personalize = console_server.client("personalize")
    group = personalize.create_dataset_group(name="console-readable")["datasetGroupArn"]
    key, secret = create_key(console_server.data_dir, "console-reader-2", READ_ONLY)
    page = sign_in(console_server, key, secret).get("/console/group", params={"arn": group})
    assert page.status_code == 200 and "console-readable" in page.text
    posts = re.findall(r'<form method="post"[^>]*>', page.text)
    assert posts == ['<form method="post" action="/console/signout" class="inline">'], posts
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=group), "datasetGroup")
    personalize.delete_dataset_group(datasetGroupArn=group)


def test_a_domain_group_offers_its_use_cases_and_a_filter_is_checked_live(console_server: LocalServer) -> None:
    client = sign_in(console_server, console_server.access_key, console_server.secret_key)
    token = csrf(client.get("/console/groups").text)
    made = client.post("/console/groups", data={"name": "console-vod", "domain": "VIDEO_ON_DEMAND", "csrf": token})
    assert made.status_code == 303
    page = client.get(made.headers["location"])
    assert 'id="create-recommender"' in page.text and "aws-vod-top-picks" in page.text
    arn = re.search(r"arn:aws:personalize:[^:]*:\d+:dataset-group/console-vod", page.text).group(0)  # type: ignore[union-attr]
    checked = client.post("/console/filter/check", params={"arn": arn},
                          data={"csrf": token, "filterExpression": "EXCLUDE ItemID WHERE Items.GENRES IN"}).json()
    assert checked["ok"] is False and checked["position"] and "position" in checked["message"]
    no_token = client.post("/console/filter/check", params={"arn": arn}, data={"filterExpression": "x"})
    assert no_token.status_code == 403
    personalize = console_server.client("personalize")
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=arn), "datasetGroup")
    personalize.delete_dataset_group(datasetGroupArn=arn)


def test_the_group_list_is_read_a_page_at_a_time(console_server: LocalServer) -> None:
    personalize = console_server.client("personalize")
    made = [personalize.create_dataset_group(name=f"console-page-{n:02d}")["datasetGroupArn"] for n in range(23)]
    client = sign_in(console_server, console_server.access_key, console_server.secret_key)
    first = client.get("/console/groups").text
    shown = set(re.findall(r">(console-page-\d\d)</a>", first))
    assert len(shown) <= 20
    following = re.search(r'href="\?next=([^"]+)">Next page', first)
    assert following, "a full page links to the next one"
    second = client.get("/console/groups?next=" + following.group(1)).text
    shown |= set(re.findall(r">(console-page-\d\d)</a>", second))
    assert shown == {f"console-page-{n:02d}" for n in range(23)}
    for arn in made:
        wait_status(lambda arn=arn: personalize.describe_dataset_group(datasetGroupArn=arn), "datasetGroup")
        personalize.delete_dataset_group(datasetGroupArn=arn)


def test_an_oversized_form_is_refused(console_server: LocalServer) -> None:
    refused = httpx.post(console_server.url + "/console/signin",
                         data={"access_key_id": "x" * (2 << 20), "secret_access_key": "y"})
    assert refused.status_code == 413 and "larger than" in refused.text


def test_guessing_a_secret_locks_that_key_id_out_of_the_sign_in_form(console_server: LocalServer) -> None:
    key, secret = create_key(console_server.data_dir, "console-guessed")
    sign_in(console_server, key, secret)  # the key works (and the server has read it)
    form = console_server.url + "/console/signin"
    answers = [httpx.post(form, data={"access_key_id": key, "secret_access_key": f"guess-{n}"}).status_code
               for n in range(10)]
    assert answers == [401] * 10
    locked = httpx.post(form, data={"access_key_id": key, "secret_access_key": secret})
    assert locked.status_code == 429 and "Too many wrong secrets" in locked.text
    assert "set-cookie" not in locked.headers
    root = httpx.post(form, data={"access_key_id": console_server.access_key,
                                  "secret_access_key": console_server.secret_key}, follow_redirects=False)
    assert root.status_code == 303  # other keys are not affected


def test_a_schema_error_is_shown_at_its_position(console_server: LocalServer) -> None:
    client = sign_in(console_server, console_server.access_key, console_server.secret_key)
    token = csrf(client.get("/console/groups").text)
    made = client.post("/console/groups", data={"name": "console-schema", "csrf": token})
    broken = '{"type": "record", "name": "Interactions", "fields": [{"name": "USER_ID" "type": "string"}]}'
    page = client.post(made.headers["location"], data={"csrf": token, "action": "dataset", "name": "events",
                                                       "datasetType": "Interactions", "schema": broken})
    assert page.status_code == 400 and "The schema is not valid JSON" in page.text
    assert 'USER_ID&#34; <mark>&#34;</mark>type' in page.text  # the character the parser stopped at
    assert "&#34;USER_ID&#34; &#34;type&#34;" in page.text  # what was typed is kept in the editor
    personalize = console_server.client("personalize")
    group = personalize.list_dataset_groups()["datasetGroups"]
    arn = next(g["datasetGroupArn"] for g in group if g["name"] == "console-schema")
    wait_status(lambda: personalize.describe_dataset_group(datasetGroupArn=arn), "datasetGroup")
    personalize.delete_dataset_group(datasetGroupArn=arn)


def test_a_session_is_accepted_by_every_worker_and_sign_out_ends_it_in_all(tmp_path: Path) -> None:
    """`serve --workers 2`: requests of one session land on either process; each accepts it, and a sign-out
    handled by one is refused by both."""
    with LocalServer(tmp_path / "server", extra_args=["--workers", "2"]) as srv:
        client = sign_in(srv, srv.access_key, srv.secret_key)
        pages = [client.get("/console/groups") for _ in range(30)]
        assert [p.status_code for p in pages] == [200] * 30
        assert len({csrf(p.text) for p in pages}) == 1  # one session, whichever process answered
        token = client.cookies["tastemaker_console"]
        assert client.post("/console/signout", data={"csrf": csrf(pages[0].text)}).status_code == 303
        after = [httpx.get(srv.url + "/console/groups", cookies={"tastemaker_console": token},
                           follow_redirects=False).status_code for _ in range(30)]
        assert after == [303] * 30


class _Keys:
    def __init__(self) -> None:
        self.secrets = {"AKIDEXAMPLE": "the-secret"}

    def secret_for(self, key: str) -> str | None:
        return self.secrets.get(key)


def test_sessions_are_shared_through_the_data_dir_and_end_with_the_key(tmp_path: Path) -> None:
    keys = _Keys()
    one, two = Sessions(keys, tmp_path), Sessions(keys, tmp_path)  # type: ignore[arg-type]  # two processes
    token = one.sign_in("AKIDEXAMPLE", "the-secret", "us-east-1")
    assert token is not None and "the-secret" not in token
    seen = two.get(token)
    assert seen is not None and seen.access_key_id == "AKIDEXAMPLE" and seen.csrf == one.get(token).csrf  # type: ignore[union-attr]
    assert two.get(token[:-2] + ("AA" if not token.endswith("AA") else "BB")) is None  # a forged signature
    assert Sessions(keys, tmp_path / "elsewhere").get(token) is None  # another data dir's key  # type: ignore[arg-type]
    keys.secrets["AKIDEXAMPLE"] = "rotated"
    assert two.get(token) is None
    keys.secrets["AKIDEXAMPLE"] = "the-secret"
    assert two.get(token) is not None
    one.sign_out(seen)
    assert two.get(token) is None and one.get(token) is None
    assert oct((tmp_path / "console" / "session-key").stat().st_mode & 0o777) == "0o600"
