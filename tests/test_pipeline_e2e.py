"""End to end: `dvc repro` of whatever dvc.yaml holds, on a tiny synthetic dataset, in a temp copy.

Checks that the pipeline runs, that DVC then sees it up to date, that a second repro
runs nothing, that a forced repro gives every output the same hash, that editing one stage's config
module or adding a setting to its params reruns only that stage and its downstream, and that changing
one EDA parameter reruns only `eda` (and whatever depends on it). The tests share one repro
(the ``built_project`` fixture, also used by ``test_sharing``) and run in file order.
"""
from __future__ import annotations

import json

import httpx
import pytest
import yaml

from src.recsys.serving.bundle_reader import ServingBundle
from tests.helpers.dvc_project import RUNNING, Project, lock_md5s

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def project(built_project) -> Project:
    return built_project[0]


@pytest.fixture(scope="module")
def first_repro(built_project) -> list[str]:
    return list(built_project[1])


def stages_in(project: Project) -> list[str]:
    return list(yaml.safe_load((project.root / "dvc.yaml").read_text())["stages"])


def test_first_repro_runs_every_stage(project, first_repro):
    assert sorted(first_repro) == sorted(stages_in(project))
    assert (project.root / "dvc.lock").exists()
    for path in ("data/synthetic/interactions.parquet", "data/processed/items.parquet",
                 "data/processed/events.parquet", "metrics/data_quality.json", "metrics/eda.json",
                 "metrics/eda/top_tracks.csv", "reports/figures/top_genres.png"):
        assert (project.root / path).exists(), path


def test_every_cleaning_rule_fires_on_synthetic_data(project, first_repro):
    quality = json.loads((project.root / "metrics" / "data_quality.json").read_text())
    for rule in ("tracks_removed_duplicate_id", "tracks_removed_empty_list", "tracks_removed_unknown_genre",
                 "tracks_with_unknown_album", "tracks_with_unknown_artist", "events_removed_unknown_track",
                 "users_removed_few_events", "events_removed_few_user_events"):
        assert quality[rule] > 0, rule
    assert 0 < quality["events_out"] < quality["events_in"]
    assert quality["tracks_out"] < quality["tracks_in"]


def test_status_up_to_date_after_repro(project, first_repro):
    assert project.status() == {}


def test_with_the_shipped_params_three_listens_change_a_warm_users_top_10(project, first_repro, tmp_path,
                                                                         start_service):
    """The real server on the bundle the pipeline built (blend and re-ranker learned with the shipped params)."""
    folder = project.root / "models" / "serving"
    bundle = ServingBundle.open(folder)
    user = int(bundle.offline.keys[0])
    heard = set(bundle.history.row(user)[0].tolist())
    listens = [int(track) for track in bundle.played_next.keys if int(track) not in heard][:3]
    server = start_service(tmp_path, {"RECSYS_BUNDLE_DIR": str(folder)})
    with httpx.Client(base_url=server.url, timeout=10) as client:
        before = [item["track_id"] for item in client.get(f"/users/{user}/recommendations").json()["items"]]
        for n, track in enumerate(listens):
            assert client.post(f"/users/{user}/listens", json={"track_id": track, "timestamp": 1_671_000_000 + n}
                               ).status_code == 201
        after = client.get(f"/users/{user}/recommendations").json()["items"]
        assert client.get("/health").json()["blend"] == bundle.blend.to_dict()
    assert [item["track_id"] for item in after] != before
    assert any(item["source"] == "online" for item in after)


def test_second_repro_runs_nothing(project, first_repro):
    ran, output = project.repro()
    assert ran == [], output
    assert "up to date" in output


def output_hashes(project: Project) -> dict[str, str]:
    return lock_md5s((project.root / "dvc.lock").read_text())


def test_forced_repro_reproduces_every_output_hash(project, first_repro):
    """Same code, params and data: a forced rebuild of every stage changes no byte of any output."""
    before = output_hashes(project)
    assert {"models/ranker.cbm", "models/als.npz", "data/recommendations/recommendations.parquet",
            "metrics/evaluation.json", "metrics/evaluation_full.json"} <= set(before)
    project.dvc("repro", "-f")
    after = output_hashes(project)
    assert {path: md5 for path, md5 in after.items() if before.get(path) != md5} == {}
    assert after == before


def test_a_stage_config_edit_or_new_setting_reruns_only_that_stage_and_downstream(project, first_repro):
    """rank_train's config module edited, or a setting added to its params section: `dvc status` names
    rank_train alone, and so does a dry repro (its downstream stages would rerun only if its outputs changed)."""
    config_module = project.root / "src/recsys/ranking/training.py"
    original = config_module.read_text()
    config_module.write_text(original + "\n# a new rank_train setting would go here\n")
    try:
        assert set(project.status()) == {"rank_train"}
        dry = project.dvc("repro", "--dry").stdout
        assert RUNNING.findall(dry) == ["rank_train"], dry
    finally:
        config_module.write_text(original)
    params = (project.root / "params.yaml").read_text()
    project.set_params(lambda p: p["rank"]["model"].update(a_new_setting=1))
    try:
        assert set(project.status()) == {"rank_train"}
    finally:
        (project.root / "params.yaml").write_text(params)
    assert project.status() == {}


def test_changing_eda_param_reruns_only_eda(project, first_repro):
    project.set_params(lambda params: params["eda"].update(top_n=params["eda"]["top_n"] + 1))
    status = project.status()
    assert "eda" in status
    ran, output = project.repro()
    assert set(ran) == {"eda"} | project.descendants("eda"), output
    assert "generate" not in ran and "clean" not in ran
    top_n = yaml.safe_load((project.root / "params.yaml").read_text())["eda"]["top_n"]
    lines = (project.root / "metrics" / "eda" / "top_tracks.csv").read_text().strip().splitlines()
    assert len(lines) == 1 + top_n
    assert project.status() == {}


def test_the_search_space_reruns_the_bundle_and_replay_and_server_settings_nothing(project, first_repro):
    def narrower_space(params):
        params["blend_search"]["space"]["online_weight"] = [0.25]
        params["service"]["port"] = 8123

    project.set_params(narrower_space)
    ran, output = project.repro()
    # the blend is learned with the bundle and shipped in it; `replay` reruns only if the bundle came out different
    assert "serving" in ran and set(ran) <= {"serving", "replay"}, output
    search = json.loads((project.root / "metrics/blend_search.json").read_text())
    tried = {trial["settings"]["online_weight"] for trial in search["trials"] if trial["step"].startswith("users with")}
    assert tried == {0.0, 0.25}  # the space and the always-tried baseline
    manifest = json.loads((project.root / "models/serving/manifest.json").read_text())
    replayed = json.loads((project.root / "metrics/replay_full.json").read_text())
    assert manifest["blend"] == search["chosen"] == replayed["blend"]  # the replay scores what the bundle serves
    assert project.status() == {}
