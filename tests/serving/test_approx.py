"""The approximate (candidate) path equals exact scoring when the candidates cover the catalogue; filters stay full."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from tastemaker.recipes import get_recipe
from tastemaker.recipes.training_data import TrainingConfig, TrainingData
from tastemaker.recipes.user_personalization import CollaborativeModel, fit_collaborative
from tastemaker.serving import approx
from tastemaker.serving.topk import softmax_scores, top_k

pytest.importorskip("hnswlib")


@pytest.fixture(scope="module")
def als_model() -> CollaborativeModel:
    """A small ALS-engine model: 300 users in 4 taste groups over 120 items, with a sequence signal."""
    rng = np.random.default_rng(0)
    users, items, times = [], [], []
    for user in range(300):
        group = user % 4
        for step in range(int(rng.integers(4, 12))):
            item = int(group * 30 + rng.integers(0, 30)) if rng.random() < 0.8 else int(rng.integers(0, 120))
            users.append(f"u{user}")
            items.append(f"i{item}")
            times.append(1_700_000_000 + user * 1000 + step)
    table = pa.table({"USER_ID": users, "ITEM_ID": items, "TIMESTAMP": pa.array(times, pa.int64())})
    data = TrainingData.from_tables(table, None, None, TrainingConfig())
    recipe = get_recipe("aws-user-personalization")
    typed = recipe.validate_hyperparameters({"hidden_dimension": "32"})
    model = fit_collaborative(recipe, data, typed, seed=0, progress=None, should_stop=None, engine="als")
    assert model.supports_candidates
    return model


def covering_scorer(model: CollaborativeModel) -> approx.CandidateScorer:
    scorer = approx.CandidateScorer(model, None, candidates=model.n_items)
    scorer.build_now()
    assert scorer.index is not None
    return scorer


def test_candidate_scores_equal_exact_scores_when_candidates_cover_the_catalogue(als_model) -> None:  # type: ignore[no-untyped-def]
    scorer = covering_scorer(als_model)
    users = np.array([0, 5, 17, 123, -1])
    recent = [np.zeros(0, np.int32), np.array([3, 4], np.int32), np.zeros(0, np.int32), np.array([90], np.int32),
              np.array([7, 8, 9], np.int32)]
    exact = als_model.score_users(users, recent)
    found = scorer.compute([(int(u), h, None) for u, h in zip(users, recent, strict=True)])
    for row, cand in enumerate(found):
        assert cand.items.size == als_model.n_items
        np.testing.assert_allclose(cand.scores, exact[row][cand.items], rtol=1e-4, atol=1e-5)
        assert approx.top_from_candidates(cand, 25, None).tolist() == top_k(exact[row], 25).tolist()
        # softmax over the candidates equals the exact softmax when nothing is left unscored
        picked = top_k(exact[row], 5)
        expected = softmax_scores(exact[row], None, picked)
        got = approx.softmax_with_tail(cand, None, als_model.n_items, cand.scores_at(als_model, picked))
        np.testing.assert_allclose(got, expected, rtol=1e-3)


def test_scores_of_items_outside_the_candidates_use_the_same_scale(als_model) -> None:  # type: ignore[no-untyped-def]
    scorer = approx.CandidateScorer(als_model, None, candidates=10, head_items=5, sample_items=10)
    scorer.build_now()
    cand = scorer.compute([(11, np.zeros(0, np.int32), None)])[0]
    exact = als_model.score_users(np.array([11]), [np.zeros(0, np.int32)])[0]
    outside = np.setdiff1d(np.arange(als_model.n_items), cand.items)[:5]
    assert outside.size
    # same scale as the candidates: equal to exact when the candidates hold the largest long-term magnitude
    top_item = int(np.argmax(np.abs(np.asarray(als_model.arrays["item_factors"]) @ cand.vector)))
    assert top_item in set(cand.items.tolist())
    np.testing.assert_allclose(cand.scores_at(als_model, outside), exact[outside], rtol=1e-4, atol=1e-5)


def test_a_strict_mask_still_gives_full_lists_from_the_candidates_or_needs_the_exact_path(als_model) -> None:  # type: ignore[no-untyped-def]
    scorer = approx.CandidateScorer(als_model, None, candidates=20, head_items=5, sample_items=10)
    scorer.build_now()
    cand = scorer.compute([(2, np.zeros(0, np.int32), None)])[0]
    exact = als_model.score_users(np.array([2]), [np.zeros(0, np.int32)])[0]
    # allow only items the candidate set does not hold (plus two it does): the candidates cannot fill 10
    mask = np.ones(als_model.n_items, dtype=bool)
    mask[cand.items] = False
    mask[cand.items[:2]] = True
    picked = approx.top_from_candidates(cand, 10, mask[cand.items])
    assert picked.size == 2  # the engine falls back to exact scoring over the masked catalogue here
    assert len(top_k(exact, 10, mask)) == 10
    # a loose mask is filled from the candidates, and every pick is allowed
    loose = np.ones(als_model.n_items, dtype=bool)
    loose[::3] = False
    picked = approx.top_from_candidates(cand, 10, loose[cand.items])
    assert picked.size == 10 and loose[picked].all()


def test_recall_against_exact_is_one_when_candidates_cover_the_catalogue(als_model) -> None:  # type: ignore[no-untyped-def]
    scorer = covering_scorer(als_model)
    assert approx.recall_against_exact(scorer, np.arange(20), k=10) == pytest.approx(1.0)
    masks = [np.arange(als_model.n_items) % 2 == 0 for _ in range(5)]
    assert approx.recall_against_exact(scorer, np.arange(5), k=10, masks=masks) == pytest.approx(1.0)


def test_small_catalogues_and_ease_models_stay_exact(als_model) -> None:  # type: ignore[no-untyped-def]
    registry = approx.ScorerRegistry()
    assert als_model.n_items < approx.ANN_MIN_ITEMS
    assert registry.get("p", als_model, None) is None


def test_a_jobs_only_process_saves_the_index_but_does_not_keep_model_or_index(  # type: ignore[no-untyped-def]
        als_model, tmp_path, monkeypatch) -> None:
    """The deploy job in the parent of `serve --workers N` (or `tastemaker worker`) checks the model and saves
    its index file for the serving processes, then lets both go; a serving process keeps them."""
    from tastemaker.cli.wiring import build_services
    from tastemaker.config import Settings
    from tastemaker.serving.deploy import preload_prefix
    from tastemaker.serving.models import model_cache

    monkeypatch.setattr(approx, "ANN_MIN_ITEMS", 10)  # the candidate path for this small catalogue
    folder = tmp_path / "model"
    als_model.save(folder)
    for serves in (False, True):
        services = build_services(Settings(data_dir=tmp_path / f"data-{serves}"))
        services.serves_requests = serves
        for path in folder.iterdir():
            services.blobs.put_file(f"models/s/t-1/{path.name}", path)
        stats = preload_prefix(services, "models/s/t-1/", "test")
        assert stats["model_items"] == als_model.n_items and stats["index_bytes"] > 0
        assert list((services.settings.cache_dir / "serving" / "ann").glob("*.index"))
        registry = services.serving.scorers
        assert [m.prefix for m in model_cache(services).loaded()] == (["models/s/t-1/"] if serves else [])
        assert ("models/s/t-1/" in registry._scorers) is serves
        services.engine.dispose()


V1 = "arn:aws:personalize:us-east-1:000000000000:solution/s/v1"
V2 = "arn:aws:personalize:us-east-1:000000000000:solution/s/v2"
CAMPAIGN = "arn:aws:personalize:us-east-1:000000000000:campaign/c"


def two_version_campaign(model, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A serving process's Services with a campaign ACTIVE on v1 and a second version v2 of the same model, both
    deployed (index files saved) by a jobs-only process, as `serve --workers N` has them."""
    from tastemaker.cli.wiring import build_services
    from tastemaker.config import Settings
    from tastemaker.serving.deploy import preload_prefix
    from tastemaker.store import resources

    monkeypatch.setattr(approx, "ANN_MIN_ITEMS", 10)
    folder = tmp_path / "model"
    model.save(folder)
    settings = Settings(data_dir=tmp_path / "data")
    deployer, server = build_services(settings), build_services(settings, migrate=False)
    deployer.serves_requests = False  # the deploy job's process: saves each index file, keeps nothing
    with server.engine.begin() as conn:
        for arn, version in ((V1, "v1"), (V2, "v2")):
            for path in folder.iterdir():
                server.blobs.put_file(f"models/{version}/{path.name}", path)
            resources.insert(conn, arn=arn, kind="solution_version", status="ACTIVE", dataset_group_arn="g",
                             body={"model_prefix": f"models/{version}/", "trained_recipe": "aws-user-personalization"})
        resources.insert(conn, arn=CAMPAIGN, kind="campaign", status="ACTIVE", dataset_group_arn="g",
                         body={"solution_version_arn": V1})
    for version in ("v1", "v2"):
        preload_prefix(deployer, f"models/{version}/", version)
    deployer.engine.dispose()
    return server


def test_requests_go_on_with_the_old_model_while_a_switch_loads_the_new_one(  # type: ignore[no-untyped-def]
        als_model, tmp_path, monkeypatch) -> None:
    """UpdateCampaign's switch: a serving process loads the new model and its saved index in the background while
    every request keeps being answered by the old one (none waits for the load); requests see the new version
    only once its model and index are in memory."""
    import threading

    from tastemaker.serving import ann
    from tastemaker.serving.deployments import deployment_cache
    from tastemaker.serving.models import model_cache
    from tastemaker.store import resources

    server = two_version_campaign(als_model, tmp_path, monkeypatch)
    cache = deployment_cache(server)
    assert cache.resolve(server, CAMPAIGN, "campaign").model_prefix == "models/v1/"
    registry = server.serving.scorers
    assert registry.get("models/v1/", als_model, server).index is not None  # loaded with the first read
    loading, release = threading.Event(), threading.Event()
    real_load = ann.FactorIndex.load

    def slow_load(*args, **kwargs):  # type: ignore[no-untyped-def]
        loading.set()
        assert release.wait(60), "the test never released the index load"
        return real_load(*args, **kwargs)

    monkeypatch.setattr(ann.FactorIndex, "load", slow_load)
    with server.engine.begin() as conn:
        resources.update(conn, CAMPAIGN, changes={"solution_version_arn": V2})
    server.serving.deployments.changes.poll(server)  # the change watch sees the switch
    assert cache.resolve(server, CAMPAIGN, "campaign").model_prefix == "models/v1/"  # not waiting for v2
    assert loading.wait(60)  # v2's index is being loaded, in the background
    for _ in range(20):  # requests meanwhile: answered by v1 at once
        assert cache.resolve(server, CAMPAIGN, "campaign").model_prefix == "models/v1/"
    assert not release.is_set()
    release.set()
    for _ in range(600):
        if (found := cache.resolve(server, CAMPAIGN, "campaign")).model_prefix == "models/v2/":
            break
        threading.Event().wait(0.05)
    assert found.model_prefix == "models/v2/" and found.version_arn == V2
    # the first time a request sees v2, its model and index are already there
    assert "models/v2/" in [m.prefix for m in model_cache(server).loaded()]
    assert registry._scorers["models/v2/"].index is not None
    server.engine.dispose()


def test_a_serving_process_loads_an_update_target_while_the_update_runs(  # type: ignore[no-untyped-def]
        als_model, tmp_path, monkeypatch) -> None:
    """While an UpdateCampaign is in progress (its job loading and checking the new version), each serving process
    already loads that version in the background; the switch then finds it in memory. A configuration change on
    the same model, and a status change, are seen by the next request."""
    import threading

    from tastemaker.serving.deployments import deployment_cache
    from tastemaker.serving.models import model_cache
    from tastemaker.store import resources

    server = two_version_campaign(als_model, tmp_path, monkeypatch)
    cache = deployment_cache(server)
    assert cache.resolve(server, CAMPAIGN, "campaign").model_prefix == "models/v1/"
    assert [m.prefix for m in model_cache(server).loaded()] == ["models/v1/"]
    for status in ("CREATE PENDING", "CREATE IN_PROGRESS"):  # UpdateCampaign, then its job's claim
        with server.engine.begin() as conn:
            resources.update(conn, CAMPAIGN, changes={"latest_campaign_update": {
                "solution_version_arn": V2, "status": status, "campaign_config": {}}})
    server.serving.deployments.changes.poll(server)
    during = cache.resolve(server, CAMPAIGN, "campaign")
    assert during.model_prefix == "models/v1/" and during.upcoming_version_arn == V2
    for _ in range(600):
        scorer = server.serving.scorers._scorers.get("models/v2/")
        if scorer is not None and scorer.index is not None and server.serving.catalogs._values.get("models/v2/"):
            break
        threading.Event().wait(0.05)
    assert "models/v2/" in [m.prefix for m in model_cache(server).loaded()]
    with server.engine.begin() as conn:  # the job's switch
        resources.update(conn, CAMPAIGN, changes={"solution_version_arn": V2, "latest_campaign_update": {
            "solution_version_arn": V2, "status": "ACTIVE", "campaign_config": {}}})
    server.serving.deployments.changes.poll(server)
    for _ in range(600):  # published by the background switch, which finds everything loaded
        if (after := cache.resolve(server, CAMPAIGN, "campaign")).model_prefix == "models/v2/":
            break
        threading.Event().wait(0.05)
    assert after.model_prefix == "models/v2/" and after.upcoming_version_arn is None
    with server.engine.begin() as conn:  # the same model, another configuration: the next request has it
        resources.update(conn, CAMPAIGN, changes={"campaign_config": {"item_exploration_config": {
            "exploration_weight": "0.9"}}})
    server.serving.deployments.changes.poll(server)
    assert cache.resolve(server, CAMPAIGN, "campaign").config["item_exploration_config"] == {
        "exploration_weight": "0.9"}
    with server.engine.begin() as conn:
        resources.update(conn, CAMPAIGN, status="DELETE PENDING")
    server.serving.deployments.changes.poll(server)
    assert cache.resolve(server, CAMPAIGN, "campaign").status == "DELETE PENDING"
    server.engine.dispose()


def test_a_jobs_only_process_does_not_load_a_saved_index_it_would_drop(  # type: ignore[no-untyped-def]
        als_model, tmp_path, monkeypatch) -> None:
    """Once the index file is saved, a deploy of the model in another jobs-only process reports its size without
    loading it (the serving processes load it; the jobs process would only drop it again), and compiles no
    serving kernels for it."""
    from tastemaker.cli.wiring import build_services
    from tastemaker.config import Settings
    from tastemaker.serving import ann
    from tastemaker.serving.deploy import preload_prefix
    from tastemaker.serving.models import model_cache

    monkeypatch.setattr(approx, "ANN_MIN_ITEMS", 10)
    folder = tmp_path / "model"
    als_model.save(folder)
    services = build_services(Settings(data_dir=tmp_path / "data"))
    services.serves_requests = False
    for path in folder.iterdir():
        services.blobs.put_file(f"models/s/t-1/{path.name}", path)
    built = preload_prefix(services, "models/s/t-1/", "test")  # builds and saves the index

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the saved index was loaded")

    monkeypatch.setattr(ann.FactorIndex, "load", refuse)
    monkeypatch.setattr(CollaborativeModel, "prepare_serving", refuse)  # it answers no requests: no kernels
    monkeypatch.setattr(approx, "CandidateScorer", refuse)  # nor a scorer (head, sample) only to drop it
    restarted = build_services(Settings(data_dir=tmp_path / "data"))  # a new process: nothing remembered
    restarted.serves_requests = False
    again = preload_prefix(restarted, "models/s/t-1/", "test")
    assert again == built and again["index_bytes"] > 0
    # and the same process does not even load the model again: it remembers that this prefix loaded
    monkeypatch.setattr(model_cache(restarted), "get", refuse)
    assert preload_prefix(restarted, "models/s/t-1/", "test") == built
    for opened in (services, restarted):
        opened.engine.dispose()


def test_the_gram_inverse_is_computed_once_per_host(  # type: ignore[no-untyped-def]
        als_model, tmp_path, monkeypatch) -> None:
    """The fold-in's (Y^T Y + lambda I)^-1 is computed by the first serving process that loads the model and read by
    the others: the same values, of the type the kernels were compiled for, and the same answers."""
    from tastemaker.cli.wiring import build_services
    from tastemaker.config import Settings
    from tastemaker.recipes import collaborative, user_personalization
    from tastemaker.serving.models import model_cache

    folder = tmp_path / "model"
    als_model.save(folder)
    expected = np.linalg.inv(np.asarray(collaborative.regularized_gram(als_model.arrays["item_factors"]), np.float64))
    assert np.array_equal(als_model.gram_inverse, expected)
    first = build_services(Settings(data_dir=tmp_path / "data"))
    for path in folder.iterdir():
        first.blobs.put_file(f"models/s/t-1/{path.name}", path)
    assert np.array_equal(model_cache(first).get(first, "models/s/t-1/").model.gram_inverse, expected)  # type: ignore[attr-defined]
    assert len(list((first.settings.cache_dir / "serving" / "gram").glob("*.npy"))) == 1

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the gram matrix was computed again")

    monkeypatch.setattr(user_personalization, "regularized_gram", refuse)
    second = build_services(Settings(data_dir=tmp_path / "data"), migrate=False)  # another worker process
    served = model_cache(second).get(second, "models/s/t-1/").model
    inverse = served.gram_inverse  # type: ignore[attr-defined]
    assert inverse.dtype == np.float64 and inverse.flags.writeable and inverse.flags.c_contiguous
    assert np.array_equal(inverse, expected)
    history = np.array([0, 3, 5], np.int64)
    assert all(np.array_equal(a, b) for a, b in zip(served.serving_state(history), als_model.serving_state(history),
                                                     strict=True))
    for opened in (first, second):
        opened.engine.dispose()


def test_an_index_saved_by_an_earlier_release_is_converted_not_rebuilt(  # type: ignore[no-untyped-def]
        als_model, tmp_path, monkeypatch) -> None:
    """An index file written with hnswlib's save_index (releases before the serialised-state format) is loaded
    once, saved in the new format beside it, and answers the same queries; nothing is rebuilt."""
    from tastemaker.serving import ann

    factors = np.asarray(als_model.arrays["item_factors"], dtype=np.float32)
    first = approx.CandidateScorer(als_model, tmp_path)
    path = first._index_path(factors)
    assert path is not None
    path.parent.mkdir(parents=True)
    old = ann.FactorIndex(factors, m=approx.INDEX_M, ef_construction=approx.INDEX_EF_CONSTRUCTION, ef=64)
    old.index.save_index(str(path.with_suffix(".hnsw")))

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the index was rebuilt")

    monkeypatch.setattr(ann.FactorIndex, "__init__", refuse)
    first.load_saved()
    assert first.index is not None and path.is_dir() and first.index_bytes() > 0
    again = approx.CandidateScorer(als_model, tmp_path)
    again.load_saved()  # from the new format this time
    vectors = np.random.default_rng(3).standard_normal((20, factors.shape[1])).astype(np.float32)
    expected = old.query(vectors, first.n_candidates)
    assert (first.index.query(vectors, first.n_candidates) == expected).all()
    assert (again.index.query(vectors, again.n_candidates) == expected).all()


def test_two_threads_saving_the_same_index_do_not_collide(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A background build and a deploy's build_now of the same index in one process: each saves under its own
    temporary name (both used the process id alone, and the second's mkdir found the first's folder:
    FileExistsError, the index left unbuilt)."""
    import threading

    second_saving, first_made = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    class FirstIndex:
        def save(self, folder):  # type: ignore[no-untyped-def]
            assert second_saving.wait(10)
            folder.mkdir(parents=True)
            (folder / "params.json").write_text("{}")
            first_made.set()

    class SecondIndex:
        def save(self, folder):  # type: ignore[no-untyped-def]
            second_saving.set()
            assert first_made.wait(10)
            folder.mkdir(parents=True)
            (folder / "params.json").write_text("{}")

    target = tmp_path / "ann" / "x.index"

    def first() -> None:
        try:
            approx._save(FirstIndex(), target)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=first)
    thread.start()
    approx._save(SecondIndex(), target)
    thread.join(10)
    assert not errors
    assert (target / "params.json").exists()
    assert [p.name for p in target.parent.iterdir()] == ["x.index"]  # no temporary folder left
