"""The web console at /console: the admin manual's screens, server-rendered, acting only through the API's
operations (tastemaker.console.calls) for the signed-in key (tastemaker.console.sessions).

Pages are Jinja2 templates and plain HTML forms: a GET renders, a POST changes something (CSRF-checked) and
redirects back, or re-renders the page with the error beside the form that caused it. Pages that show work
in progress (imports, training, deploys, deletes) refresh themselves every few seconds while it lasts. Lists
are read a page at a time (the operations' nextToken), never the whole catalogue.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from tastemaker.api.app import Api
from tastemaker.console.calls import BotoShaped, Caller
from tastemaker.console.charts import bar_chart
from tastemaker.console.sessions import COOKIE, Session, Sessions, TooManyAttempts, csrf_ok
from tastemaker.control.cleanup_plan import STAGES, Plan, error_code, make_plan
from tastemaker.control.filters import check_expression
from tastemaker.errors import InvalidInputException, TastemakerError
from tastemaker.serving.explain import Reason, explain
from tastemaker.serving.filter_preview import preview
from tastemaker.serving.history import user_history
from tastemaker.store import resources
from tastemaker.store.records import SolutionVersion, load

log = logging.getLogger("tastemaker.console")
HERE = Path(__file__).parent
PREFIX = "/console"
PAGE = 20  # rows per list page
MAX_FORM_BYTES = 1 << 20  # a schema or filter expression is a few kB; a CSV upload is not taken here
MAX_UPLOAD_BYTES = 1 << 30  # a CSV uploaded from the browser (larger files: import from s3:// or a root)
HISTORY = 20  # the user's newest events shown beside their recommendations
PREVIEW_RESULTS = 25  # recommendations a filter preview checks
BUSY_WORDS = ("PENDING", "IN_PROGRESS", "IN PROGRESS")
DEFAULT_SCHEMAS = {
    "Interactions": {"type": "record", "name": "Interactions", "namespace": "com.amazonaws.personalize.schema",
                     "fields": [{"name": "USER_ID", "type": "string"}, {"name": "ITEM_ID", "type": "string"},
                                {"name": "TIMESTAMP", "type": "long"}, {"name": "EVENT_TYPE", "type": "string"}],
                     "version": "1.0"},
    "Items": {"type": "record", "name": "Items", "namespace": "com.amazonaws.personalize.schema",
              "fields": [{"name": "ITEM_ID", "type": "string"},
                         {"name": "GENRES", "type": ["null", "string"], "categorical": True}],
              "version": "1.0"},
    "Users": {"type": "record", "name": "Users", "namespace": "com.amazonaws.personalize.schema",
              "fields": [{"name": "USER_ID", "type": "string"}], "version": "1.0"},
}
TARGETED = {  # form action -> (operation, its ARN parameter), for the buttons beside a resource
    "delete-filter": ("DeleteFilter", "filterArn"), "delete-tracker": ("DeleteEventTracker", "eventTrackerArn"),
    "delete-campaign": ("DeleteCampaign", "campaignArn"), "delete-recommender": ("DeleteRecommender", "recommenderArn"),
    "stop-recommender": ("StopRecommender", "recommenderArn"), "start-recommender": ("StartRecommender", "recommenderArn"),
    "stop-version": ("StopSolutionVersionCreation", "solutionVersionArn"),
}
WINDOW_SECONDS = 3600  # the monitoring charts' window (a datapoint per minute)
# (metric name with * for the operation, statistic, unit) per chart; spec 9.2's names.
RUNTIME_METRICS = (("*", "Sum", "calls"), ("*4xxErrors", "Sum", "calls"), ("*5xxErrors", "Sum", "calls"),
                   ("*Latency", "Average", "ms"))
EVENT_METRICS = (("PutEventsRequests", "Sum", "calls"), ("PutEvents4xxErrors", "Sum", "calls"),
                 ("PutEvents5xxErrors", "Sum", "calls"), ("PutEventLatency", "Average", "ms"))
# (operation suffix, list field, ARN key, describe field) of the batch job kinds
BATCH_KINDS = (("BatchInferenceJob", "batchInferenceJobs", "batchInferenceJobArn", "batchInferenceJob"),
               ("BatchSegmentJob", "batchSegmentJobs", "batchSegmentJobArn", "batchSegmentJob"))
EVALUATIONS_KEPT = 4  # parsed evaluation reports kept per process
RESULT_LINES = 5  # first lines of a finished batch job's local output shown
AUDIT_KEYS = ("EventName", "Username", "AccessKeyId", "ResourceName", "ResourceType", "ReadOnly", "EventId")
Handler = Callable[[Request, "Ctx"], Awaitable[Response]]


class Ctx:
    """One signed-in request: its session, the operations caller and what the templates need."""

    def __init__(self, console: Console, request: Request, session: Session) -> None:
        self.console = console
        self.request = request
        self.session = session
        self.caller = Caller(console.api, session.access_key_id, session.region,
                             source_ip=request.client.host if request.client else None)
        self.can_write = self.caller.allowed("CreateDatasetGroup", {"name": "console-probe"})

    def render(self, template: str, status: int = 200, **values: Any) -> Response:
        values.update(request=self.request, session=self.session, can_write=self.can_write, prefix=PREFIX,
                      csrf=self.session.csrf, busy=_busy)
        return self.console.templates.TemplateResponse(self.request, template, values, status_code=status)


def _busy(status: str | None) -> bool:
    return bool(status) and any(word in (status or "") for word in BUSY_WORDS)


def _back(path: str, **query: str) -> RedirectResponse:
    return RedirectResponse(PREFIX + path + ("?" + urlencode(query) if query else ""), status_code=303)


class Console:
    """The console's ASGI app, bound to the API it calls through."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.sessions = Sessions(api.keys, api.services.settings.data_dir)
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.templates.env.filters["when"] = _when
        self.recipes: dict[str, dict[str, Any]] = {}  # recipe ARN -> its description (recipes never change)
        self.evaluations: dict[str, dict[str, Any]] = {}  # solution version ARN -> its evaluation report
        self.deleting: dict[str, str] = {}  # dataset group ARN -> progress line of a delete in the background
        routes = [
            Route("/", self.home), Route("/signin", self.signin, methods=["GET", "POST"]),
            Route("/signout", self.signout, methods=["POST"]),
            Route("/upload", self.upload, methods=["POST"]),
            Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
        ]
        pages: dict[str, tuple[Handler, Handler | None]] = {
            "/groups": (self.groups, self.create_group),
            "/group": (self.group, self.change_group),
            "/group/delete": (self.delete_preview, self.delete_group),
            "/campaign": (self.campaign, self.test_campaign),
            "/tracker": (self.tracker, self.send_event),
            "/filter/check": (self.group, self.check_filter),
            "/filter/preview": (self.group, self.preview_filter),
            "/monitoring": (self.monitoring, None),
            "/jobs": (self.jobs, self.change_jobs),
            "/evaluation": (self.evaluation, None),
            "/audit": (self.audit, None),
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
                return _back("/signin")
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

    async def home(self, request: Request) -> Response:
        signed_in = self.sessions.get(request.cookies.get(COOKIE)) is not None
        return _back("/groups" if signed_in else "/signin")

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
                response = _back("/groups")
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
        response = _back("/signin")
        response.delete_cookie(COOKIE, path=PREFIX)
        return response

    # --- dataset groups -------------------------------------------------------------------------------------

    async def groups(self, request: Request, ctx: Ctx, error: str | None = None) -> Response:
        page = await ctx.caller.call("ListDatasetGroups", {"maxResults": PAGE,
                                                          "nextToken": request.query_params.get("next")})
        groups = page.get("datasetGroups", [])
        return ctx.render("groups.html", status=400 if error else 200, groups=groups, error=error,
                          next=page.get("nextToken"), deleting=self.deleting,
                          refresh=any(_busy(g.get("status")) for g in groups) or bool(self.deleting))

    async def create_group(self, request: Request, ctx: Ctx) -> Response:
        form = request.state.form
        try:
            made = await ctx.caller.call("CreateDatasetGroup", {"name": form.get("name", "").strip(),
                                                                "domain": form.get("domain")})
        except TastemakerError as exc:
            return await self.groups(request, ctx, error=exc.message)
        return _back("/group", arn=made["datasetGroupArn"])

    async def group(self, request: Request, ctx: Ctx, errors: dict[str, str] | None = None,
                    form: dict[str, str] | None = None) -> Response:
        arn = request.query_params.get("arn", "")
        try:
            group = (await ctx.caller.call("DescribeDatasetGroup", {"datasetGroupArn": arn}))["datasetGroup"]
        except TastemakerError as exc:
            return ctx.render("error.html", status=404, error=exc.message)
        call = ctx.caller.call
        datasets = (await call("ListDatasets", {"datasetGroupArn": arn, "maxResults": PAGE}))["datasets"]
        imports = []
        for dataset in datasets:
            listed = await call("ListDatasetImportJobs", {"datasetArn": dataset["datasetArn"], "maxResults": 5})
            for job in listed.get("datasetImportJobs", []):
                described = await call("DescribeDatasetImportJob",
                                       {"datasetImportJobArn": job["datasetImportJobArn"]})
                job_arn: str = job["datasetImportJobArn"]
                counts = await run_in_threadpool(_import_counts, self.api, job_arn)
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
        refresh = any(_busy(r.get("status")) for rows in everything for r in rows)
        deployments = [(f"campaign {c['name']}", c["campaignArn"]) for s in solutions for c in s["campaigns"]
                       if c.get("status") == "ACTIVE"]
        deployments += [(f"recommender {r['name']}", r["recommenderArn"]) for r in recommenders
                        if r.get("status") == "ACTIVE"]
        schema_mark = _mark((form or {}).get("schema", ""), (errors or {}).get("dataset", ""))
        used = {d["datasetType"] for d in datasets}
        schema_for = {kind: json.dumps(schema, indent=1) for kind, schema in DEFAULT_SCHEMAS.items()}
        return ctx.render("group.html", status=400 if errors else 200, group=group, datasets=datasets,
                          imports=imports, solutions=solutions, filters=filters, trackers=trackers,
                          recommenders=recommenders, recipes=recipes, domain_recipes=domain_recipes,
                          next_links=next_links, schema_mark=schema_mark, refresh=refresh and not errors,
                          errors=errors or {}, form=form or {}, schema_for=schema_for,
                          free_types=[t for t in DEFAULT_SCHEMAS if t not in used], metric_rows=_metric_rows(solutions),
                          deployments=deployments)

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
                await call("CreateDataset", {"name": form.get("name", "").strip(), "datasetGroupArn": arn,
                                             "datasetType": kind, "schemaArn": schema["schemaArn"]})
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
            return await self.group(request, ctx, errors={action: exc.message}, form=form)
        return _back("/group", arn=arn)

    async def check_filter(self, request: Request, ctx: Ctx) -> Response:
        """Live validation for the filter editor: CreateFilter's own check of the expression against the
        group's schemas, run without creating anything; the error's position comes back for highlighting."""
        arn = request.query_params.get("arn", "")
        expression = request.state.form.get("filterExpression", "")
        try:
            await ctx.caller.call("DescribeDatasetGroup", {"datasetGroupArn": arn})  # the key may read it
            await _to_thread(lambda: _check_expression(ctx.caller, arn, expression))
        except TastemakerError as exc:
            found = re.search(r"at position (\d+)", exc.message)
            return JSONResponse({"ok": False, "message": exc.message,
                                 "position": int(found.group(1)) if found else None})
        return JSONResponse({"ok": True, "message": "The expression is valid for this dataset group."})

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
                "recommenderArn" if _is_recommender(target) else "campaignArn": target, "userId": user,
                "numResults": PREVIEW_RESULTS})
            items = [i["itemId"] for i in answer.get("itemList", [])]
            rows = await _to_thread(lambda: preview(self.api.services, target, expression, items, user_id=user,
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
        plan = await _to_thread(lambda: make_plan(BotoShaped(ctx.caller), arn))
        if plan is None:
            return ctx.render("error.html", status=404, error=f"Dataset group {arn} does not exist.")
        return ctx.render("delete.html", arn=arn, plan=plan, stages=STAGES)

    async def delete_group(self, request: Request, ctx: Ctx) -> Response:
        arn = request.query_params.get("arn", "")
        if request.state.form.get("confirm") != arn.rsplit("/", 1)[-1]:
            plan = await _to_thread(lambda: make_plan(BotoShaped(ctx.caller), arn))
            return ctx.render("delete.html", status=400, arn=arn, plan=plan, stages=STAGES,
                              error="Type the dataset group's name to confirm the delete.")
        plan = await _to_thread(lambda: make_plan(BotoShaped(ctx.caller), arn))
        if plan is not None and arn not in self.deleting:
            self.deleting[arn] = "starting"
            threading.Thread(target=self._delete_in_background, args=(ctx.caller, plan), daemon=True,
                             name="console-delete").start()
        return _back("/groups")

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
            if _is_recommender(arn):
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
            events = await _to_thread(lambda: user_history(self.api.services, group, user_id))
            history = [(item, kind, _when(when)) for item, kind, when in
                       zip(events.item_ids[:HISTORY], events.event_types[:HISTORY], events.timestamps[:HISTORY],
                           strict=False)]
        return ctx.render("campaign.html", status=400 if error else 200, campaign=campaign, group=group,
                          kind="Recommender" if _is_recommender(arn) else "Campaign", arn=arn,
                          filters=[f for f in filters if f.get("status") == "ACTIVE"], result=result, error=error,
                          form=form or {"numResults": "10"}, refresh=_busy(campaign.get("status")),
                          history=history, reasons=reasons or [])

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
                "recommenderArn" if _is_recommender(arn) else "campaignArn": arn,
                "userId": form.get("userId"), "itemId": form.get("itemId"),
                "numResults": int(form.get("numResults") or 10), "filterArn": form.get("filterArn"),
                "filterValues": values, "context": context, "promotions": promotions})
        except (TastemakerError, ValueError) as exc:
            return await self.campaign(request, ctx, error=getattr(exc, "message", str(exc)), form=form)
        user_id, item_id = form.get("userId", "").strip() or None, form.get("itemId", "").strip() or None
        try:  # why each item is there: asked of the model the key just got recommendations from
            reasons = await _to_thread(lambda: explain(self.api.services, arn, result.get("itemList", []),
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
            charts = await _charts(ctx.caller, "Event tracker", arn, EVENT_METRICS[:2])
        except TastemakerError as exc:  # a key without cloudwatch:GetMetricData still sends test events
            chart_error = exc.message
        return ctx.render("tracker.html", status=400 if error else 200, tracker=tracker, sent=sent, error=error,
                          form=form or {"eventType": "click"}, refresh=_busy(tracker.get("status")),
                          charts=charts, chart_error=chart_error)

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


    # --- CSV upload -----------------------------------------------------------------------------------------

    async def upload(self, request: Request) -> Response:
        """A CSV file sent by the page's upload form as the raw request body (no multipart: the browser
        streams the file), written to DATA_DIR/imports/console/ (an import root) as it arrives, then imported
        by CreateDatasetImportJob like any other local file. The key must be allowed to create the import
        before a byte is stored; the CSRF token travels in the X-CSRF-Token header."""
        session = self.sessions.get(request.cookies.get(COOKIE))
        if session is None:
            return JSONResponse({"message": "Sign in again: the session has ended."}, status_code=401)
        if not csrf_ok(session, request.headers.get("x-csrf-token")):
            return JSONResponse({"message": "The page is stale (CSRF token mismatch): reload it and try again."},
                                status_code=403)
        ctx = Ctx(self, request, session)
        dataset = request.query_params.get("arn", "")
        name = re.sub(r"[^A-Za-z0-9._-]", "_", request.query_params.get("name", "upload.csv"))[-80:] or "upload.csv"
        if not ctx.caller.allowed("CreateDatasetImportJob", {"datasetArn": dataset}):
            return JSONResponse({"message": "This key may not create import jobs for " + dataset + "."},
                                status_code=403)
        try:
            await ctx.caller.call("DescribeDataset", {"datasetArn": dataset})
        except TastemakerError as exc:
            return JSONResponse({"message": exc.message}, status_code=exc.status)
        folder = self.api.services.settings.imports_dir / "console"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}-{name}"
        size = 0
        try:
            with target.open("wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > MAX_UPLOAD_BYTES:
                        raise FormTooLarge()
                    out.write(chunk)  # a chunk of at most 64 kB: no thread hop
        except (FormTooLarge, OSError) as exc:
            target.unlink(missing_ok=True)
            reason = (f"The file is larger than {MAX_UPLOAD_BYTES >> 20} MiB: import it from s3:// or an import "
                      "root instead." if isinstance(exc, FormTooLarge) else f"Could not store the upload: {exc}.")
            return JSONResponse({"message": reason}, status_code=413 if isinstance(exc, FormTooLarge) else 500)
        if size == 0:
            target.unlink(missing_ok=True)
            return JSONResponse({"message": "The file is empty: choose a CSV file with a header row."},
                                status_code=400)
        try:
            made = await ctx.caller.call("CreateDatasetImportJob", {
                "jobName": f"console-upload-{int(time.time())}-{secrets.token_hex(2)}", "datasetArn": dataset,
                "dataSource": {"dataLocation": str(target)},
                "roleArn": "arn:aws:iam::000000000000:role/tastemaker-console"})
        except TastemakerError as exc:
            target.unlink(missing_ok=True)
            return JSONResponse({"message": exc.message}, status_code=exc.status)
        return JSONResponse({"datasetImportJobArn": made["datasetImportJobArn"], "bytes": size})

    # --- batch jobs and metric attributions -------------------------------------------------------------------

    async def jobs(self, request: Request, ctx: Ctx, error: tuple[str, str] | None = None,
                   form: dict[str, str] | None = None) -> Response:
        """A group's batch inference and segment jobs (per trained version), dataset exports, data deletions
        and its metric attribution: status, progress (lines answered, recorded by the job), failure reason and,
        for finished batch jobs whose output is a local folder, the first lines of the results."""
        arn = request.query_params.get("arn", "")
        call = ctx.caller.call
        try:
            group = (await call("DescribeDatasetGroup", {"datasetGroupArn": arn}))["datasetGroup"]
        except TastemakerError as exc:
            return ctx.render("error.html", status=404, error=exc.message)
        versions: list[dict[str, Any]] = []
        for solution in await _all(call, "ListSolutions", "solutions", {"datasetGroupArn": arn}):
            for version in await _all(call, "ListSolutionVersions", "solutionVersions",
                                      {"solutionArn": solution["solutionArn"]}, limit=20):
                if version.get("status") == "ACTIVE":
                    versions.append({**version, "solutionName": solution["name"]})
        batch: list[dict[str, Any]] = []
        for version in versions:
            for op, field, key, kind in BATCH_KINDS:
                for job in await _all(call, f"List{op}s", field, {"solutionVersionArn": version["solutionVersionArn"]},
                                      limit=PAGE):
                    job_arn: str = job[key]
                    described = (await call(f"Describe{op}", {key: job_arn}))[kind]
                    extra = await run_in_threadpool(_job_extra, self.api, job_arn)
                    batch.append({**described, "arn": job_arn, "kind": op, "solutionName": version["solutionName"],
                                  **extra})
        datasets = (await call("ListDatasets", {"datasetGroupArn": arn, "maxResults": PAGE}))["datasets"]
        exports = [job for d in datasets for job in await _all(
            call, "ListDatasetExportJobs", "datasetExportJobs", {"datasetArn": d["datasetArn"]}, limit=PAGE)]
        deletions = await _all(call, "ListDataDeletionJobs", "dataDeletionJobs", {"datasetGroupArn": arn}, limit=PAGE)
        attributions = []
        for found in await _all(call, "ListMetricAttributions", "metricAttributions", {"datasetGroupArn": arn}):
            described = (await call("DescribeMetricAttribution", {
                "metricAttributionArn": found["metricAttributionArn"]}))["metricAttribution"]
            metrics = (await call("ListMetricAttributionMetrics", {
                "metricAttributionArn": found["metricAttributionArn"]})).get("metrics", [])
            attributions.append({**described, "metrics": metrics})
        filters = [f for f in (await call("ListFilters", {"datasetGroupArn": arn, "maxResults": PAGE}))["Filters"]
                   if f.get("status") == "ACTIVE"]
        everything = [*batch, *exports, *deletions, *attributions]
        return ctx.render("jobs.html", status=400 if error else 200, group=group, versions=versions, batch=batch,
                          exports=exports, deletions=deletions, attributions=attributions, filters=filters,
                          error=error, form=form or {}, refresh=not error and any(
                              _busy(j.get("status")) for j in everything))

    async def change_jobs(self, request: Request, ctx: Ctx) -> Response:
        form: dict[str, str] = request.state.form
        arn = request.query_params.get("arn", "")
        action = form.get("action", "")
        role = "arn:aws:iam::000000000000:role/tastemaker-console"
        try:
            if action in ("inference", "segment"):
                params: dict[str, Any] = {
                    "jobName": form.get("jobName", "").strip(), "solutionVersionArn": form.get("solutionVersionArn"),
                    "jobInput": {"s3DataSource": {"path": form.get("inputPath", "").strip()}},
                    "jobOutput": {"s3DataDestination": {"path": form.get("outputPath", "").strip()}},
                    "roleArn": role, "filterArn": form.get("filterArn") or None}
                if form.get("numResults", "").strip():
                    params["numResults"] = int(form["numResults"])
                await ctx.caller.call("CreateBatchInferenceJob" if action == "inference" else "CreateBatchSegmentJob",
                                      params)
            elif action == "attribution":
                await ctx.caller.call("CreateMetricAttribution", {
                    "name": form.get("name", "").strip(), "datasetGroupArn": arn,
                    "metrics": [{"eventType": form.get("eventType", "").strip(),
                                 "metricName": form.get("metricName", "").strip(),
                                 "expression": form.get("expression", "").strip()}],
                    "metricsOutputConfig": {"roleArn": role, **({"s3DataDestination": {
                        "path": form["outputPath"].strip()}} if form.get("outputPath", "").strip() else {})}})
            elif action == "delete-attribution":
                await ctx.caller.call("DeleteMetricAttribution", {"metricAttributionArn": form.get("target")})
            else:
                return await self.jobs(request, ctx, error=("page", f"Unknown action {action!r}."))
        except ValueError:
            return await self.jobs(request, ctx, error=(action, "Number of results must be a whole number."),
                                   form=form)
        except TastemakerError as exc:
            return await self.jobs(request, ctx, error=(action, exc.message), form=form)
        return _back("/jobs", arn=arn)

    # --- evaluation evidence --------------------------------------------------------------------------------

    async def evaluation(self, request: Request, ctx: Ctx) -> Response:
        """The evidence behind a version's metrics, per held-out user (`tastemaker evaluation`): the events the
        model was given, the held-out truth, and the top 25 it recommended, hits marked; a page of users at a
        time, or one user by id."""
        arn = request.query_params.get("arn", "")
        wanted = request.query_params.get("user", "").strip()
        try:
            start = max(0, int(request.query_params.get("start", "0")))
        except ValueError:
            start = 0
        try:
            version = (await ctx.caller.call("DescribeSolutionVersion", {"solutionVersionArn": arn}))[
                "solutionVersion"]
            solution = (await ctx.caller.call("DescribeSolution", {"solutionArn": version["solutionArn"]}))[
                "solution"]
        except TastemakerError as exc:
            return ctx.render("error.html", status=404, error=exc.message)
        group = solution.get("datasetGroupArn") or ""
        report = await run_in_threadpool(self._evaluation_report, arn)
        if report is None:
            return ctx.render("evaluation.html", version=version, report=None, rows=[], wanted=wanted, start=0,
                              total=0, group=group, page=PAGE)
        queries = report.get("queries", [])
        chosen = [q for q in queries if q["user_id"] == wanted] if wanted else queries[start:start + PAGE]
        rows = []
        for query in chosen:
            truth = set(query.get("truth", []))
            recommended = query.get("recommended", [])
            rows.append({**query, "hits": [(item, item in truth) for item in recommended],
                         "hits10": sum(1 for item in recommended[:10] if item in truth)})
        return ctx.render("evaluation.html", status=404 if wanted and not rows else 200, version=version,
                          report=report, rows=rows, wanted=wanted, start=start, total=len(queries), group=group,
                          page=PAGE)

    def _evaluation_report(self, arn: str) -> dict[str, Any] | None:
        """The version's evaluation.json (parsed once per version: a few MB at most; the newest few kept)."""
        cached = self.evaluations.get(arn)
        if cached is None:
            services = self.api.services
            with services.read_engine.connect() as conn:
                prefix = load(conn, arn, SolutionVersion).model_prefix
            if not prefix or not services.blobs.exists(prefix + "evaluation.json"):
                return None
            cached = json.loads(services.blobs.get_bytes(prefix + "evaluation.json"))
            while len(self.evaluations) >= EVALUATIONS_KEPT:
                self.evaluations.pop(next(iter(self.evaluations)))
            self.evaluations[arn] = cached
        return cached

    # --- monitoring and the audit trail ---------------------------------------------------------------------

    async def monitoring(self, request: Request, ctx: Ctx) -> Response:
        """The last hour's request, error, latency and event charts of a group's campaigns, recommenders and
        event trackers: CloudWatch's GetMetricData (namespace AWS/Personalize), one datapoint per minute."""
        arn = request.query_params.get("arn", "")
        call = ctx.caller.call
        try:
            group = (await call("DescribeDatasetGroup", {"datasetGroupArn": arn}))["datasetGroup"]
        except TastemakerError as exc:
            return ctx.render("error.html", status=404, error=exc.message)
        targets: list[tuple[str, str, str, tuple[tuple[str, str, str], ...]]] = []  # kind, name, arn, metrics
        for solution in await _all(call, "ListSolutions", "solutions", {"datasetGroupArn": arn}):
            for campaign in await _all(call, "ListCampaigns", "campaigns", {"solutionArn": solution["solutionArn"]}):
                targets.append(("Campaign", campaign["name"], campaign["campaignArn"], RUNTIME_METRICS))
        for recommender in await _all(call, "ListRecommenders", "recommenders", {"datasetGroupArn": arn}):
            targets.append(("Recommender", recommender["name"], recommender["recommenderArn"], RUNTIME_METRICS))
        for tracker in await _all(call, "ListEventTrackers", "eventTrackers", {"datasetGroupArn": arn}):
            targets.append(("Event tracker", tracker["name"], tracker["eventTrackerArn"], EVENT_METRICS))
        panels, error = [], None
        for kind, name, target, metrics in targets:
            try:
                charts = await _charts(ctx.caller, kind, target, metrics)
            except TastemakerError as exc:  # e.g. a key without cloudwatch:GetMetricData
                error = exc.message
                break
            panels.append({"kind": kind, "name": name, "arn": target, "charts": charts})
        return ctx.render("monitoring.html", status=403 if error else 200, group=group, panels=panels,
                          error=error)

    async def audit(self, request: Request, ctx: Ctx) -> Response:
        """The audit trail, newest first, searchable by one CloudTrail lookup attribute (LookupEvents)."""
        query = request.query_params
        key, value = query.get("key", "EventName"), query.get("value", "").strip()
        params: dict[str, Any] = {"MaxResults": PAGE, "NextToken": query.get("next")}
        if value:
            params["LookupAttributes"] = [{"AttributeKey": key, "AttributeValue": value}]
        rows, error, following = [], None, None
        try:
            page = await ctx.caller.call("LookupEvents", params)
        except TastemakerError as exc:
            error = exc.message
        else:
            following = page.get("NextToken")
            for event in page.get("Events", []):
                record = json.loads(event.get("CloudTrailEvent") or "{}")
                rows.append({"time": _when(event.get("EventTime")), "name": event.get("EventName"),
                             "user": event.get("Username") or "-", "key": record.get("userIdentity", {}).get(
                                 "accessKeyId") or "-", "outcome": record.get("errorCode") or "ok",
                             "message": record.get("errorMessage") or "", "ip": record.get("sourceIPAddress") or "-",
                             "agent": record.get("userAgent") or "-",
                             "resources": [r.get("ResourceName") for r in event.get("Resources", [])]})
        next_link = "?" + urlencode({"key": key, "value": value, "next": following}) if following else None
        return ctx.render("audit.html", status=400 if error else 200, rows=rows, error=error, key=key,
                          value=value, keys=AUDIT_KEYS, next_link=next_link)

async def _too_large(request: Request, exc: Exception) -> Response:
    return Response(f"The form is larger than {MAX_FORM_BYTES} bytes.", status_code=413, media_type="text/plain")


def _mark(text: str, message: str) -> tuple[str, str, str] | None:
    """The text split around the character a JSON error names ("... (char N)"): before, it, after."""
    found = re.search(r"\(char (\d+)\)", message)
    if not found or not text:
        return None
    at = min(int(found.group(1)), len(text) - 1)
    return text[:at], text[at:at + 1] or " ", text[at + 1:]


def _import_counts(api: Api, arn: str) -> dict[str, Any]:
    """What an import job has counted: rows imported and skipped, and rows/s over its execution time (the
    job records them when it finishes; `tastemaker import-report` prints the same)."""
    with api.services.read_engine.connect() as conn:
        body = resources.get(conn, arn, "dataset_import_job").body
    rows, seconds = body.get("row_count"), body.get("execution_seconds")
    return {"rows": rows, "skipped": body.get("skipped_rows") or 0, "seconds": seconds,
            "rate": rows / seconds if rows and seconds else None}


def _job_extra(api: Api, arn: str) -> dict[str, Any]:
    """A batch job's recorded progress, and the first lines of its results when they are a local folder inside
    the import roots (what the job was allowed to write)."""
    with api.services.read_engine.connect() as conn:
        body = resources.get(conn, arn).body
    progress = body.get("progress") or {}
    out: dict[str, Any] = {"linesProcessed": progress.get("lines_processed"),
                           "linesFailed": progress.get("lines_failed"), "results": []}
    folder = ((body.get("job_output") or {}).get("s3_data_destination") or {}).get("path") or ""
    if folder and not folder.startswith("s3://"):
        roots = [root.resolve() for root in api.services.settings.effective_import_roots]
        path = Path(folder).resolve()
        if path.is_dir() and any(path.is_relative_to(root) for root in roots):
            for result in sorted(path.glob("*.out"))[:1]:
                with result.open(errors="replace") as fh:
                    out["results"] = [line.rstrip("\n")[:400] for _, line in zip(range(RESULT_LINES), fh, strict=False)]
                out["resultFile"] = str(result)
    return out


async def _charts(caller: Caller, kind: str, target: str,
                  metrics: tuple[tuple[str, str, str], ...]) -> list[Any]:
    """The last hour of a campaign's, recommender's or event tracker's metrics as bar charts (GetMetricData
    for the key, one datapoint per minute)."""
    end = float(int(time.time()) // 60 * 60 + 60)
    start = end - WINDOW_SECONDS
    dimension = {"Campaign": "CampaignArn", "Recommender": "RecommenderArn"}.get(kind, "EventTrackerArn")
    queries = [{"Id": f"m{n}", "MetricStat": {"Metric": {
        "Namespace": "AWS/Personalize", "MetricName": metric.replace("*", _op(kind)),
        "Dimensions": [{"Name": dimension, "Value": target}]}, "Period": 60, "Stat": stat}}
        for n, (metric, stat, _) in enumerate(metrics)]
    data = await caller.call("GetMetricData", {"MetricDataQueries": queries, "StartTime": start, "EndTime": end})
    by_id = {r["Id"]: r for r in data.get("MetricDataResults", [])}
    return [bar_chart(metric.replace("*", _op(kind)), by_id.get(f"m{n}", {}).get("Timestamps", []),
                      by_id.get(f"m{n}", {}).get("Values", []), start=start, end=end, period=60, unit=unit)
            for n, (metric, _, unit) in enumerate(metrics)]


def _op(kind: str) -> str:
    return "GetRecommendations" if kind in ("Campaign", "Recommender") else "PutEvents"


async def _all(call: Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]], name: str, field: str,
               params: dict[str, Any], limit: int = 200) -> list[dict[str, Any]]:
    """Up to `limit` rows of a list operation, page by page."""
    rows: list[dict[str, Any]] = []
    token = None
    while len(rows) < limit:
        page = await call(name, {**params, "maxResults": min(100, limit - len(rows)), "nextToken": token})
        rows.extend(page.get(field, []))
        token = page.get("nextToken")
        if not token:
            break
    return rows


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


def _is_recommender(arn: str) -> bool:
    return ":recommender/" in arn


def _check_expression(caller: Caller, group_arn: str, expression: str) -> None:
    with caller.api.services.read_engine.connect() as conn:
        check_expression(conn, group_arn, expression)


def _when(value: Any) -> str:
    """A wire timestamp (epoch seconds) as UTC date and time."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value or "")


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


class FormTooLarge(Exception):
    pass


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


async def _to_thread(fn: Callable[[], Any]) -> Any:
    return await run_in_threadpool(fn)


def build_console(api: Api) -> Console:
    return Console(api)
