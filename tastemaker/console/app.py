"""The web console at /console: the admin manual's screens, server-rendered, acting only through the API's
operations (tastemaker.console.calls) for the signed-in key (tastemaker.console.sessions).

Pages are Jinja2 templates and plain HTML forms: a GET renders, a POST changes something (CSRF-checked) and
redirects back, or re-renders the page with the error beside the form that caused it. Pages that show work
in progress (imports, training, deploys, deletes) refresh themselves every few seconds while it lasts. Lists
are read a page at a time (the operations' nextToken), never the whole catalogue.

This module holds the application, sign-in and the manual's resource screens (groups, datasets, solutions,
campaigns and their test panel, filters, trackers); console.insight the monitoring, audit and evaluation
pages, console.batch the batch jobs and metric attribution page, console.upload the CSV upload.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from tastemaker.api.app import Api
from tastemaker.console import batch, insight
from tastemaker.console.calls import BotoShaped, Caller
from tastemaker.console.charts import PlotlyScript, bar_chart, versions_chart
from tastemaker.console.items import shown_metadata
from tastemaker.console.json_text import Mark, locate, mark_at
from tastemaker.console.pages import (
    PAGE,
    PREFIX,
    Ctx,
    FormTooLarge,
    Handler,
    back,
    busy,
    is_recommender,
    to_thread,
    when,
)
from tastemaker.console.sessions import COOKIE, Sessions, TooManyAttempts, csrf_ok
from tastemaker.console.upload import import_counts, upload
from tastemaker.control.cleanup_plan import STAGES, Plan, error_code, make_plan
from tastemaker.control.filters import check_expression
from tastemaker.data.schemas import SchemaProblem, check_schema_for_dataset, parse_schema
from tastemaker.errors import InvalidInputException, TastemakerError
from tastemaker.serving.explain import Reason, explain
from tastemaker.serving.filter_preview import preview
from tastemaker.serving.history import user_history
from tastemaker.store import events as stored_events
from tastemaker.store import resources

log = logging.getLogger("tastemaker.console")
HERE = Path(__file__).parent
MAX_FORM_BYTES = 1 << 20  # a schema or filter expression is a few kB; a CSV upload is not taken here
HISTORY = 20  # the user's newest events shown beside their recommendations
LATEST_EVENTS = 20  # a tracker's newest events shown on its page
LIVE_SECONDS, LIVE_PERIOD = 600, 10  # the tracker's live chart: events received per 10 seconds, last 10 minutes
LIVE_LIMIT = 10_000  # newest events per partition the live chart reads (a bounded walk of the index)
PREVIEW_RESULTS = 25  # recommendations a filter preview checks
_STRING, _LONG = {"type": "string"}, {"type": "long"}
_CATEGORY = {"type": ["null", "string"], "categorical": True}


def _schema(name: str, **fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "record", "name": name, "namespace": "com.amazonaws.personalize.schema",
            "fields": [{"name": field, **spec} for field, spec in fields.items()], "version": "1.0"}


_INTERACTIONS = _schema("Interactions", USER_ID=_STRING, ITEM_ID=_STRING, TIMESTAMP=_LONG, EVENT_TYPE=_STRING)
# The schema the dataset form suggests per group domain and dataset type: each passes CreateSchema and
# CreateDataset's rules for its domain (tests/console/test_schema_editor.py checks them against those rules).
SUGGESTED_SCHEMAS: dict[str | None, dict[str, dict[str, Any]]] = {
    None: {"Interactions": _INTERACTIONS, "Items": _schema("Items", ITEM_ID=_STRING, GENRES=_CATEGORY),
           "Users": _schema("Users", USER_ID=_STRING, MEMBERSHIP=_CATEGORY),
           "Actions": _schema("Actions", ACTION_ID=_STRING, VALUE={"type": ["null", "long"]}),
           "Action_Interactions": _schema("ActionInteractions", USER_ID=_STRING, ACTION_ID=_STRING,
                                          TIMESTAMP=_LONG, EVENT_TYPE=_STRING)},
    "ECOMMERCE": {"Interactions": _INTERACTIONS,
                  "Items": _schema("Items", ITEM_ID=_STRING, PRICE={"type": "float"},
                                   CATEGORY_L1={"type": "string", "categorical": True}, CATEGORY_L2=_CATEGORY),
                  "Users": _schema("Users", USER_ID=_STRING, MEMBERSHIP=_CATEGORY)},
    "VIDEO_ON_DEMAND": {"Interactions": _INTERACTIONS,
                        "Items": _schema("Items", ITEM_ID=_STRING, GENRES={"type": "string", "categorical": True},
                                         CREATION_TIMESTAMP=_LONG),
                        "Users": _schema("Users", USER_ID=_STRING, SUBSCRIPTION_MODEL=_CATEGORY)},
}
TARGETED = {  # form action -> (operation, its ARN parameter), for the buttons beside a resource
    "delete-filter": ("DeleteFilter", "filterArn"), "delete-tracker": ("DeleteEventTracker", "eventTrackerArn"),
    "delete-campaign": ("DeleteCampaign", "campaignArn"), "delete-recommender": ("DeleteRecommender", "recommenderArn"),
    "stop-recommender": ("StopRecommender", "recommenderArn"), "start-recommender": ("StartRecommender", "recommenderArn"),
    "stop-version": ("StopSolutionVersionCreation", "solutionVersionArn"),
}
class Console:
    """The console's ASGI app, bound to the API it calls through."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.sessions = Sessions(api.keys, api.services.settings.data_dir)
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.filters["when"] = when
        self.recipes: dict[str, dict[str, Any]] = {}  # recipe ARN -> its description (recipes never change)
        self.evaluations = insight.EvaluationReports(api)
        self.deleting: dict[str, str] = {}  # dataset group ARN -> progress line of a delete in the background
        self.plotly = PlotlyScript()  # plotly.js for the charts, from the installed package
        routes = [
            Route("/", self.home), Route("/signin", self.signin, methods=["GET", "POST"]),
            Route("/signout", self.signout, methods=["POST"]),
            Route("/upload", self.upload, methods=["POST"]),
            Route("/static/" + self.plotly.name, self.plotly.serve),  # before the mount: not a file of static/
            Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
        ]
        pages: dict[str, tuple[Handler, Handler | None]] = {
            "/groups": (self.groups, self.create_group),
            "/group": (self.group, self.change_group),
            "/group/delete": (self.delete_preview, self.delete_group),
            "/campaign": (self.campaign, self.test_campaign),
            "/tracker": (self.tracker, self.send_event),
            "/tracker/live": (self.tracker_live, None),
            "/filter/check": (self.group, self.check_filter),
            "/schema/check": (self.group, self.check_schema),
            "/filter/preview": (self.group, self.preview_filter),
            "/monitoring": (insight.monitoring, None),
            "/jobs": (batch.jobs, batch.change_jobs),
            "/evaluation": (insight.evaluation, None),
            "/audit": (insight.audit, None),
        }
        for path, (get, post) in pages.items():
            routes.append(Route(path, self._signed_in(get, post), methods=["GET", "POST"] if post else ["GET"]))
        self.app = Starlette(routes=routes, exception_handlers={FormTooLarge: _too_large})

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == PREFIX:  # "/console" itself: the home route
            scope = {**scope, "path": PREFIX + "/", "raw_path": (PREFIX + "/").encode()}
        # Starlette routes on the path below root_path (the path keeps its prefix, as ASGI servers send it).
        await self.app({**scope, "root_path": scope.get("root_path", "") + PREFIX}, receive, send)

    # --- sign-in --------------------------------------------------------------------------------------------

    def _signed_in(self, get: Handler, post: Handler | None) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            session = self.sessions.get(request.cookies.get(COOKIE))
            if session is None:
                return back("/signin")
            ctx = Ctx(self, request, session)
            if request.method == "POST":
                form = await _form(request)
                if not csrf_ok(session, form.get("csrf")):
                    return Response("The form is stale (CSRF token mismatch): reload the page and try again.",
                                    status_code=403, media_type="text/plain")
                assert post is not None
                request.state.form = form
                return await post(request, ctx)
            return await get(request, ctx)

        return endpoint

    async def upload(self, request: Request) -> Response:
        return await upload(self, request)  # console.upload: the body is the file, not a form

    async def home(self, request: Request) -> Response:
        signed_in = self.sessions.get(request.cookies.get(COOKIE)) is not None
        return back("/groups" if signed_in else "/signin")

    async def signin(self, request: Request) -> Response:
        error = None
        region = self.api.services.settings.default_region
        if request.method == "POST":
            form = await _form(request)
            region = form.get("region") or region
            try:
                token = self.sessions.sign_in(form.get("access_key_id", ""), form.get("secret_access_key", ""),
                                              region)
            except TooManyAttempts as exc:
                return self.templates.TemplateResponse(request, "signin.html", {
                    "error": str(exc), "region": region, "prefix": PREFIX, "session": None}, status_code=429)
            if token is not None:
                response = back("/groups")
                response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path=PREFIX,
                                    secure=request.url.scheme == "https")
                return response
            error = "That access key id and secret do not match a key this server accepts."
        return self.templates.TemplateResponse(request, "signin.html", {
            "error": error, "region": region, "prefix": PREFIX, "session": None}, status_code=401 if error else 200)

    async def signout(self, request: Request) -> Response:
        token = request.cookies.get(COOKIE)
        session = self.sessions.get(token)
        form = await _form(request)
        if session is not None and csrf_ok(session, form.get("csrf")):
            self.sessions.sign_out(session)
        response = back("/signin")
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    # --- dataset groups -------------------------------------------------------------------------------------

    async def groups(self, request: Request, ctx: Ctx, error: str | None = None) -> Response:
        page = await ctx.caller.call("ListDatasetGroups", {"maxResults": PAGE,
                                                          "nextToken": request.query_params.get("next")})
        groups = page.get("datasetGroups", [])
        return ctx.render("groups.html", status=400 if error else 200, groups=groups, error=error,
                          next=page.get("nextToken"), deleting=self.deleting,
                          refresh=any(busy(g.get("status")) for g in groups) or bool(self.deleting))

    async def create_group(self, request: Request, ctx: Ctx) -> Response:
        form = request.state.form
        try:
            made = await ctx.caller.call("CreateDatasetGroup", {"name": form.get("name", "").strip(),
                                                                "domain": form.get("domain")})
        except TastemakerError as exc:
            return await self.groups(request, ctx, error=exc.message)
        return back("/group", arn=made["datasetGroupArn"])

    async def group(self, request: Request, ctx: Ctx, errors: dict[str, str] | None = None,
                    form: dict[str, str] | None = None, problem: TastemakerError | None = None) -> Response:
        arn = request.query_params.get("arn", "")
        try:
            group = (await ctx.caller.call("DescribeDatasetGroup", {"datasetGroupArn": arn}))["datasetGroup"]
        except TastemakerError as exc:
            return ctx.render("error.html", status=404, error=exc.message)
        call = ctx.caller.call
        datasets = (await call("ListDatasets", {"datasetGroupArn": arn, "maxResults": PAGE}))["datasets"]
        imports = []
        for dataset in datasets:  # the schema viewer: each dataset's schema as stored, one member a line
            schema_arn = (await call("DescribeDataset", {"datasetArn": dataset["datasetArn"]}))["dataset"]["schemaArn"]
            schema = (await call("DescribeSchema", {"schemaArn": schema_arn}))["schema"]
            dataset["schemaName"], dataset["schemaText"] = schema["name"], _pretty(schema["schema"])
            listed = await call("ListDatasetImportJobs", {"datasetArn": dataset["datasetArn"], "maxResults": 5})
            for job in listed.get("datasetImportJobs", []):
                described = await call("DescribeDatasetImportJob",
                                       {"datasetImportJobArn": job["datasetImportJobArn"]})
                job_arn: str = job["datasetImportJobArn"]
                counts = await run_in_threadpool(import_counts, self.api, job_arn)
                imports.append({**described["datasetImportJob"], "datasetType": dataset["datasetType"],
                                "counts": counts})
        solutions = []
        query = request.query_params
        pages: dict[str, str | None] = {}  # list -> the token of its next page (links keep the others' pages)
        listed = await call("ListSolutions", {"datasetGroupArn": arn, "maxResults": PAGE, "nextToken": query.get("sn")})
        pages["sn"] = listed.get("nextToken")
        for solution in listed["solutions"]:
            described = (await call("DescribeSolution", {"solutionArn": solution["solutionArn"]}))["solution"]
            versions = (await call("ListSolutionVersions", {"solutionArn": solution["solutionArn"],
                                                           "maxResults": 5}))["solutionVersions"]
            for version in versions:
                if version.get("status") == "ACTIVE":
                    metrics = await call("GetSolutionMetrics", {"solutionVersionArn": version["solutionVersionArn"]})
                    version["metrics"] = metrics.get("metrics", {})
                elif version.get("status", "").endswith("FAILED"):
                    version["failureReason"] = (await call("DescribeSolutionVersion", {
                        "solutionVersionArn": version["solutionVersionArn"]}))["solutionVersion"].get("failureReason")
                elif busy(version.get("status")):  # the trainer's stage, as the job runner last recorded it
                    stored = await run_in_threadpool(_stored_progress, self.api, version["solutionVersionArn"])
                    version["training"] = training_line(stored, time.time())
            campaigns = [(await call("DescribeCampaign", {"campaignArn": c["campaignArn"]}))["campaign"]
                         for c in (await call("ListCampaigns", {"solutionArn": solution["solutionArn"],
                                                                "maxResults": PAGE}))["campaigns"]]
            solutions.append({**solution, "recipeArn": described.get("recipeArn"), "versions": versions,
                              "campaigns": campaigns})
        listed = await call("ListFilters", {"datasetGroupArn": arn, "maxResults": PAGE, "nextToken": query.get("fn")})
        filters, pages["fn"] = listed["Filters"], listed.get("nextToken")
        for item in filters:
            if item.get("status", "").endswith("FAILED"):
                item["failureReason"] = (await call("DescribeFilter", {"filterArn": item["filterArn"]}))[
                    "filter"].get("failureReason")
        trackers = (await call("ListEventTrackers", {"datasetGroupArn": arn, "maxResults": PAGE}))["eventTrackers"]
        listed = await call("ListRecommenders", {"datasetGroupArn": arn, "maxResults": PAGE,
                                                 "nextToken": query.get("rn")})
        recommenders, pages["rn"] = listed["recommenders"], listed.get("nextToken")
        next_links = {key: "?" + urlencode({**dict(query), key: token}) for key, token in pages.items() if token}
        recipes = [await self._recipe(ctx, r["recipeArn"])
                   for r in (await call("ListRecipes", {"maxResults": 100}))["recipes"]] if ctx.can_write else []
        domain_recipes = []
        if group.get("domain") and ctx.can_write:
            domain_recipes = (await call("ListRecipes", {"domain": group["domain"], "maxResults": 100}))["recipes"]
        everything = ([group], datasets, imports, solutions, filters, trackers, recommenders,
                      [v for s in solutions for v in s["versions"]], [c for s in solutions for c in s["campaigns"]])
        refresh = any(busy(r.get("status")) for rows in everything for r in rows)
        deployments = [(f"campaign {c['name']}", c["campaignArn"]) for s in solutions for c in s["campaigns"]
                       if c.get("status") == "ACTIVE"]
        deployments += [(f"recommender {r['name']}", r["recommenderArn"]) for r in recommenders
                        if r.get("status") == "ACTIVE"]
        schema_text = (form or {}).get("schema", "")
        mark = schema_mark(schema_text, problem) if errors and "dataset" in errors else None
        if mark is not None and errors:  # the editor's error names the line and column, and marks the text
            errors["dataset"] = f"Line {mark.line}, column {mark.column}: {errors['dataset']}"
        used = {d["datasetType"].upper() for d in datasets}
        suggested = SUGGESTED_SCHEMAS[group.get("domain") or None]
        schema_for = {kind: json.dumps(schema, indent=1) for kind, schema in suggested.items()}
        metric_rows = _metric_rows(solutions)
        return ctx.render("group.html", status=400 if errors else 200, group=group, datasets=datasets,
                          imports=imports, solutions=solutions, filters=filters, trackers=trackers,
                          recommenders=recommenders, recipes=recipes, domain_recipes=domain_recipes,
                          next_links=next_links, schema_mark=mark.split(schema_text) if mark else None,
                          refresh=refresh and not errors,
                          errors=errors or {}, form=form or {}, schema_for=schema_for,
                          free_types=[t for t in suggested if t.upper() not in used], metric_rows=metric_rows,
                          metrics_chart=versions_chart(metric_rows) if metric_rows else "", deployments=deployments)

    async def _recipe(self, ctx: Ctx, arn: str) -> dict[str, Any]:
        """A recipe with its description and its algorithm's default hyperparameters (fixed: read once)."""
        known = self.recipes.get(arn)
        if known is None:
            recipe = (await ctx.caller.call("DescribeRecipe", {"recipeArn": arn}))["recipe"]
            try:
                algorithm = (await ctx.caller.call("DescribeAlgorithm", {
                    "algorithmArn": recipe.get("algorithmArn", "")}))["algorithm"]
            except TastemakerError:
                algorithm = {}
            known = self.recipes[arn] = {**recipe, "hyperParameters": algorithm.get("defaultHyperParameters", {})}
        return known

    async def change_group(self, request: Request, ctx: Ctx) -> Response:
        form: dict[str, str] = request.state.form
        arn = request.query_params.get("arn", "")
        action = form.get("action", "")
        call = ctx.caller.call
        try:
            if action == "dataset":
                kind = form.get("datasetType", "Interactions")
                schema = await call("CreateSchema", {"name": f"{form.get('name', 'console')}-{secrets.token_hex(3)}",
                                                     "schema": form.get("schema", ""),
                                                     "domain": form.get("domain")})
                try:
                    await call("CreateDataset", {"name": form.get("name", "").strip(), "datasetGroupArn": arn,
                                                 "datasetType": kind, "schemaArn": schema["schemaArn"]})
                except TastemakerError:  # the schema was made for this dataset only: leave no orphan behind
                    with contextlib.suppress(TastemakerError):
                        await call("DeleteSchema", {"schemaArn": schema["schemaArn"]})
                    raise
            elif action == "import":
                await call("CreateDatasetImportJob", {
                    "jobName": form.get("jobName", "").strip() or f"console-import-{int(time.time())}",
                    "datasetArn": form.get("datasetArn"),
                    "dataSource": {"dataLocation": form.get("dataLocation", "").strip()},
                    "roleArn": "arn:aws:iam::000000000000:role/tastemaker-console"})
            elif action == "solution":
                await call("CreateSolution", {"name": form.get("name", "").strip(), "datasetGroupArn": arn,
                                              "recipeArn": form.get("recipeArn")})
            elif action == "version":
                await call("CreateSolutionVersion", {"solutionArn": form.get("solutionArn")})
            elif action == "campaign":
                await call("CreateCampaign", {"name": form.get("name", "").strip(),
                                              "solutionVersionArn": form.get("solutionVersionArn")})
            elif action == "filter":
                await call("CreateFilter", {"name": form.get("name", "").strip(), "datasetGroupArn": arn,
                                            "filterExpression": form.get("filterExpression", "")})
            elif action == "tracker":
                await call("CreateEventTracker", {"name": form.get("name", "").strip(), "datasetGroupArn": arn})
            elif action == "recommender":
                await call("CreateRecommender", {"name": form.get("name", "").strip(), "datasetGroupArn": arn,
                                                 "recipeArn": form.get("recipeArn")})
            elif action == "update-campaign":
                await call("UpdateCampaign", {"campaignArn": form.get("target"),
                                              "solutionVersionArn": form.get("solutionVersionArn")})
            elif action in TARGETED:
                name, key = TARGETED[action]
                await call(name, {key: form.get("target")})
            else:
                return await self.group(request, ctx, errors={"page": f"Unknown action {action!r}."})
        except TastemakerError as exc:
            return await self.group(request, ctx, errors={action: exc.message}, form=form, problem=exc)
        return back("/group", arn=arn)

    async def check_filter(self, request: Request, ctx: Ctx) -> Response:
        """Live validation for the filter editor: CreateFilter's own check of the expression against the
        group's schemas, run without creating anything; the error's position comes back for highlighting."""
        arn = request.query_params.get("arn", "")
        expression = request.state.form.get("filterExpression", "")
        try:
            await ctx.caller.call("DescribeDatasetGroup", {"datasetGroupArn": arn})  # the key may read it
            await to_thread(lambda: _check_expression(ctx.caller, arn, expression))
        except TastemakerError as exc:
            found = re.search(r"at position (\d+)", exc.message)
            return JSONResponse({"ok": False, "message": exc.message,
                                 "position": int(found.group(1)) if found else None})
        return JSONResponse({"ok": True, "message": "The expression is valid for this dataset group."})

    async def check_schema(self, request: Request, ctx: Ctx) -> Response:
        """Live validation for the schema editor: CreateSchema's check of the Avro schema, then CreateDataset's
        rules for the chosen dataset type in this group's domain, run without creating anything; the error's
        line, column and the span of the offending value come back for highlighting."""
        arn = request.query_params.get("arn", "")
        form: dict[str, str] = request.state.form
        text, kind = form.get("schema", ""), form.get("datasetType", "Interactions")
        try:
            group = (await ctx.caller.call("DescribeDatasetGroup", {"datasetGroupArn": arn}))["datasetGroup"]
            domain = group.get("domain")
            check_schema_for_dataset(parse_schema(text, domain), kind, domain)
        except TastemakerError as exc:
            mark = schema_mark(text, exc)
            where = {"line": mark.line, "column": mark.column, "start": mark.start, "end": mark.end} if mark else {}
            return JSONResponse({"ok": False, "message": exc.message, **where})
        return JSONResponse({"ok": True, "message": f"The schema is valid for this group's {kind} dataset."})

    async def preview_filter(self, request: Request, ctx: Ctx) -> Response:
        """What the expression in the filter editor would remove from a user's recommendations: the key's own
        GetRecommendations (unfiltered), each item then checked against the expression (serving.filter_preview)."""
        group = request.query_params.get("arn", "")
        form: dict[str, str] = request.state.form
        expression, user = form.get("filterExpression", ""), form.get("previewUser", "").strip()
        target = form.get("previewTarget", "")
        values: dict[str, Any] = {"group": group, "expression": expression, "user": user, "target": target,
                                  "rows": [], "removed": 0, "error": None}
        try:
            if not user:
                raise ValueError("Give a user id to preview the filter for.")
            filter_values = json.loads(form["filterValues"]) if form.get("filterValues", "").strip() else None
            if filter_values is not None and not isinstance(filter_values, dict):
                raise ValueError("Filter values must be a JSON object, e.g. {\"GENRE\": \"\\\"Drama\\\"\"}.")
            answer = await ctx.caller.call("GetRecommendations", {
                "recommenderArn" if is_recommender(target) else "campaignArn": target, "userId": user,
                "numResults": PREVIEW_RESULTS})
            items = [i["itemId"] for i in answer.get("itemList", [])]
            rows = await to_thread(lambda: preview(self.api.services, target, expression, items, user_id=user,
                                                    values=filter_values))
        except json.JSONDecodeError as exc:
            values["error"] = f"Filter values must be a JSON object: {exc}."
        except (TastemakerError, ValueError) as exc:
            values["error"] = getattr(exc, "message", str(exc))
        else:
            values.update(rows=rows, removed=sum(1 for _, kept in rows if not kept))
        return ctx.render("filter_preview.html", status=400 if values["error"] else 200, **values)

    async def delete_preview(self, request: Request, ctx: Ctx) -> Response:
        arn = request.query_params.get("arn", "")
        plan = await to_thread(lambda: make_plan(BotoShaped(ctx.caller), arn))
        if plan is None:
            return ctx.render("error.html", status=404, error=f"Dataset group {arn} does not exist.")
        return ctx.render("delete.html", arn=arn, plan=plan, stages=STAGES)

    async def delete_group(self, request: Request, ctx: Ctx) -> Response:
        arn = request.query_params.get("arn", "")
        if request.state.form.get("confirm") != arn.rsplit("/", 1)[-1]:
            plan = await to_thread(lambda: make_plan(BotoShaped(ctx.caller), arn))
            return ctx.render("delete.html", status=400, arn=arn, plan=plan, stages=STAGES,
                              error="Type the dataset group's name to confirm the delete.")
        plan = await to_thread(lambda: make_plan(BotoShaped(ctx.caller), arn))
        if plan is not None and arn not in self.deleting:
            self.deleting[arn] = "starting"
            threading.Thread(target=self._delete_in_background, args=(ctx.caller, plan), daemon=True,
                             name="console-delete").start()
        return back("/groups")

    def _delete_in_background(self, caller: Caller, plan: Plan) -> None:
        """Delete the plan stage by stage, each stage only when the one before is gone (as the server asks)."""
        client = BotoShaped(caller)
        try:
            for stage in STAGES:
                pending = [(kind, arn) for kind in stage for arn in plan.resources.get(kind.name, [])]
                for kind, arn in pending:
                    self.deleting[plan.group_arn] = f"deleting {kind.name} {arn.rsplit('/', 1)[-1]}"
                    deadline = time.monotonic() + 600
                    while True:
                        try:
                            getattr(client, kind.delete)(**kind.delete_params(arn))
                            break
                        except TastemakerError as exc:
                            if error_code(exc) == "ResourceNotFoundException":
                                break
                            if error_code(exc) != "ResourceInUseException" or time.monotonic() > deadline:
                                raise
                            time.sleep(0.5)  # still being created or updated
                for kind, arn in pending:
                    while True:
                        try:
                            getattr(client, kind.describe)(**{kind.arn_key: arn})
                        except TastemakerError as exc:
                            if error_code(exc) == "ResourceNotFoundException":
                                break
                            raise
                        time.sleep(0.3)
            self.deleting.pop(plan.group_arn, None)
        except Exception as exc:  # noqa: BLE001 - shown on the groups page
            log.warning("console delete of %s stopped: %s", plan.group_arn, exc)
            self.deleting[plan.group_arn] = f"stopped: {getattr(exc, 'message', exc)}"

    # --- campaigns: the test panel --------------------------------------------------------------------------

    async def campaign(self, request: Request, ctx: Ctx, result: dict[str, Any] | None = None,
                       error: str | None = None, form: dict[str, str] | None = None,
                       reasons: list[Reason] | None = None) -> Response:
        arn = request.query_params.get("arn", "")
        try:
            if is_recommender(arn):
                campaign = (await ctx.caller.call("DescribeRecommender", {"recommenderArn": arn}))["recommender"]
                group = campaign["datasetGroupArn"]
            else:
                campaign = (await ctx.caller.call("DescribeCampaign", {"campaignArn": arn}))["campaign"]
                version = (await ctx.caller.call("DescribeSolutionVersion", {
                    "solutionVersionArn": campaign["solutionVersionArn"]}))["solutionVersion"]
                group = (await ctx.caller.call("DescribeSolution", {
                    "solutionArn": version["solutionArn"]}))["solution"]["datasetGroupArn"]
        except TastemakerError as exc:
            return ctx.render("error.html", status=404, error=exc.message)
        filters = (await ctx.caller.call("ListFilters", {"datasetGroupArn": group, "maxResults": PAGE}))["Filters"]
        history: list[tuple[str, str, str]] = []
        user_id = (form or {}).get("userId", "").strip()
        if result is not None and user_id:  # the key could get this user's recommendations: show what they saw
            events = await to_thread(lambda: user_history(self.api.services, group, user_id))
            history = [(item, kind, when(at)) for item, kind, at in
                       zip(events.item_ids[:HISTORY], events.event_types[:HISTORY], events.timestamps[:HISTORY],
                           strict=False)]
        columns, about = await to_thread(lambda: shown_metadata(self.api.services, arn, result, history))
        return ctx.render("campaign.html", status=400 if error else 200, campaign=campaign, group=group,
                          kind="Recommender" if is_recommender(arn) else "Campaign", arn=arn,
                          filters=[f for f in filters if f.get("status") == "ACTIVE"], result=result, error=error,
                          form=form or {"numResults": "10"}, refresh=busy(campaign.get("status")),
                          history=history, reasons=reasons or [], columns=columns, about=about)

    async def test_campaign(self, request: Request, ctx: Ctx) -> Response:
        form: dict[str, str] = request.state.form
        arn = request.query_params.get("arn", "")
        try:
            values = _json_object(form, "filterValues", "Filter values")
            context = _json_object(form, "context", "Context")
        except TastemakerError as exc:
            return await self.campaign(request, ctx, error=exc.message, form=form)
        promotions = None
        if form.get("promotionFilterArn"):  # one promotion: a share of the slots for a filter's items
            promotions = [{"name": form.get("promotionName", "").strip() or "console-promotion",
                           "filterArn": form["promotionFilterArn"],
                           "percentPromotedItems": int(form.get("promotionPercent") or 0)}]
        try:
            result = await ctx.caller.call("GetRecommendations", {
                "recommenderArn" if is_recommender(arn) else "campaignArn": arn,
                "userId": form.get("userId"), "itemId": form.get("itemId"),
                "numResults": int(form.get("numResults") or 10), "filterArn": form.get("filterArn"),
                "filterValues": values, "context": context, "promotions": promotions})
        except (TastemakerError, ValueError) as exc:
            return await self.campaign(request, ctx, error=getattr(exc, "message", str(exc)), form=form)
        user_id, item_id = form.get("userId", "").strip() or None, form.get("itemId", "").strip() or None
        try:  # why each item is there: asked of the model the key just got recommendations from
            reasons = await to_thread(lambda: explain(self.api.services, arn, result.get("itemList", []),
                                                       user_id=user_id, item_id=item_id))
        except TastemakerError as exc:
            log.info("no explanation for %s: %s", arn, exc.message)
            reasons = []
        return await self.campaign(request, ctx, result=result, form=form, reasons=reasons)

    # --- event trackers -------------------------------------------------------------------------------------

    async def tracker(self, request: Request, ctx: Ctx, sent: str | None = None, error: str | None = None,
                      form: dict[str, str] | None = None) -> Response:
        arn = request.query_params.get("arn", "")
        try:
            tracker = (await ctx.caller.call("DescribeEventTracker", {"eventTrackerArn": arn}))["eventTracker"]
        except TastemakerError as exc:
            return ctx.render("error.html", status=404, error=exc.message)
        charts: list[Any] = []
        chart_error: str | None = None
        try:
            charts = await insight.charts_for(ctx.caller, "Event tracker", arn, insight.EVENT_METRICS[:2])
        except TastemakerError as exc:  # a key without cloudwatch:GetMetricData still sends test events
            chart_error = exc.message
        # Read only once DescribeEventTracker succeeded for the key: a key that may not see the tracker got the
        # error page above. Each partition's read walks the (partition, id) index backwards; the merge keeps the
        # newest LATEST_EVENTS by arrival (ids are one sequence across partitions).
        partitions = await _partitions(ctx, tracker["datasetGroupArn"])

        def newest() -> list[tuple[str, stored_events.StoredEvent]]:
            rows = [(call, e) for call, partition in partitions
                    for e in stored_events.newest(self.api.services.read_engine, partition, LATEST_EVENTS)]
            return sorted(rows, key=lambda row: -row[1].id)[:LATEST_EVENTS]

        latest = await to_thread(newest)
        live = await to_thread(lambda: _live_chart(self.api, partitions, time.time()))
        return ctx.render("tracker.html", status=400 if error else 200, tracker=tracker, sent=sent, error=error,
                          form=form or {"eventType": "click"}, refresh=busy(tracker.get("status")),
                          charts=charts, chart_error=chart_error, latest=latest, live=live)

    async def tracker_live(self, request: Request, ctx: Ctx) -> Response:
        """The tracker page's live chart alone (console.js fetches it every few seconds and redraws in place)."""
        try:
            tracker = (await ctx.caller.call("DescribeEventTracker", {
                "eventTrackerArn": request.query_params.get("arn", "")}))["eventTracker"]
        except TastemakerError as exc:
            return Response(exc.message, status_code=404, media_type="text/plain")
        partitions = await _partitions(ctx, tracker["datasetGroupArn"])
        chart = await to_thread(lambda: _live_chart(self.api, partitions, time.time()))
        return Response(str(chart), media_type="text/html", headers={"Cache-Control": "no-store"})

    async def send_event(self, request: Request, ctx: Ctx) -> Response:
        form: dict[str, str] = request.state.form
        arn = request.query_params.get("arn", "")
        try:
            tracker = (await ctx.caller.call("DescribeEventTracker", {"eventTrackerArn": arn}))["eventTracker"]
            await ctx.caller.call("PutEvents", {
                "trackingId": tracker["trackingId"], "userId": form.get("userId"),
                "sessionId": form.get("sessionId") or f"console-{form.get('userId') or 'anonymous'}",
                "eventList": [{"eventType": form.get("eventType") or "click", "itemId": form.get("itemId"),
                               "sentAt": time.time()}]})
        except TastemakerError as exc:
            return await self.tracker(request, ctx, error=exc.message, form=form)
        return await self.tracker(request, ctx, form=form,
                                  sent=f"Sent a {form.get('eventType') or 'click'} event on item "
                                       f"{form.get('itemId')} for user {form.get('userId')}.")


async def _partitions(ctx: Ctx, group: str) -> list[tuple[str, str]]:
    """(call, events partition) of a tracker's dataset group, read only once DescribeEventTracker succeeded for
    the key: PutEvents stores a tracker's events in its dataset group's partition; the tracker's
    PutActionInteractions rows go to the group's Action_Interactions dataset's partition (when it has one, and
    the key may list the group's datasets)."""
    try:
        datasets = (await ctx.caller.call("ListDatasets", {"datasetGroupArn": group, "maxResults": 100}))["datasets"]
    except TastemakerError:
        datasets = []
    return [("PutEvents", group)] + [("PutActionInteractions", d["datasetArn"]) for d in datasets
                                     if d.get("datasetType", "").upper() == "ACTION_INTERACTIONS"]


def _live_chart(api: Api, partitions: list[tuple[str, str]], now: float) -> Markup:
    """Events received per LIVE_PERIOD seconds over the last LIVE_SECONDS, from the stored events (each
    partition's newest LIVE_LIMIT at most, so the read stays bounded at any event rate)."""
    end = float(int(now) // LIVE_PERIOD * LIVE_PERIOD + LIVE_PERIOD)
    start = end - LIVE_SECONDS
    stamps = [at for _call, partition in partitions
              for at in stored_events.arrived_since(api.services.read_engine, partition, start, LIVE_LIMIT)]
    return bar_chart("Events received", stamps, [1] * len(stamps), start=start, end=end, period=LIVE_PERIOD,
                     unit="events", with_total=True)


async def _too_large(request: Request, exc: Exception) -> Response:
    return Response(f"The form is larger than {MAX_FORM_BYTES} bytes.", status_code=413, media_type="text/plain")


def schema_mark(text: str, problem: TastemakerError | None) -> Mark | None:
    """Where in the schema editor's text a schema problem is: the JSON pointer or character offset that
    schema validation gave (data.schemas.SchemaProblem), as a span with its line and column."""
    if not isinstance(problem, SchemaProblem) or not text:
        return None
    if problem.at is not None:
        return mark_at(text, problem.at)
    return locate(text, problem.pointer) if problem.pointer is not None else None


def _pretty(text: str) -> str:
    """A stored schema's JSON one member a line (as the editor suggests them); the text as stored if it is not JSON."""
    try:
        return json.dumps(json.loads(text), indent=1)
    except ValueError:
        return text


def _json_object(form: dict[str, str], field: str, label: str) -> dict[str, Any] | None:
    """A form field holding a JSON object of strings (filter values, context), or None when empty."""
    text = form.get(field, "").strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputException(f"{label} must be a JSON object: {exc}.") from None
    if not isinstance(value, dict):
        raise InvalidInputException(f'{label} must be a JSON object of strings, e.g. {{"DEVICE": "phone"}}.')
    return value


def _check_expression(caller: Caller, group_arn: str, expression: str) -> None:
    with caller.api.services.read_engine.connect() as conn:
        check_expression(conn, group_arn, expression)


def _stored_progress(api: Api, arn: str) -> dict[str, Any] | None:
    with api.services.read_engine.connect() as conn:
        found = resources.find(conn, arn, "solution_version")
    progress: dict[str, Any] | None = found.body.get("progress") if found else None
    return progress


def training_line(progress: dict[str, Any] | None, now: float) -> str | None:
    """A training's progress (jobs.train_process.Stages, recorded every few seconds) as one line: the stage it
    is in, the current fit's share done, the time in that stage and since the training started."""
    stages = (progress or {}).get("stages") or []
    if not stages:
        return None
    stage, entered = stages[-1]
    fraction = progress.get("fraction") if progress else None
    share = f", {fraction:.0%} of this fit" if isinstance(fraction, int | float) else ""
    return (f"step {len(stages)}: {stage}{share} · {max(0.0, now - entered):.0f} s in this step, "
            f"{max(0.0, now - stages[0][1]):.0f} s in all")


def _metric_rows(solutions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per metric: each trained version's value and its share of the best (for the bar)."""
    versions = [(s["name"], s.get("recipeArn", "").rsplit("/", 1)[-1], v) for s in solutions
                for v in s["versions"] if v.get("metrics")]
    names = sorted({m for _, _, v in versions for m in v["metrics"]})
    rows = []
    for metric in names:
        values = [(f"{name} ({recipe})", float(v["metrics"].get(metric) or 0.0)) for name, recipe, v in versions]
        best = max((value for _, value in values), default=0.0) or 1.0
        rows.append({"metric": metric, "values": [(label, value, value / best) for label, value in values]})
    return rows


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body as a dict (the last value of a repeated field); a body past
    MAX_FORM_BYTES is refused as it streams in (FormTooLarge), so a page cannot be made to buffer gigabytes."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise FormTooLarge()
        chunks.append(chunk)
    body = b"".join(chunks).decode("utf-8", "replace")
    return {key: values[-1] for key, values in parse_qs(body, keep_blank_values=True).items()}


def build_console(api: Api) -> Console:
    return Console(api)
