"""An annotator answers one turn in Argilla's web UI (headless Chromium); pull gets it."""

from __future__ import annotations

import re
import shutil
import time

import jsonlines
import pytest
from prefect.testing.utilities import prefect_test_harness

from annotation.client import connect, load_settings
from annotation.datasets import Level, dataset_name
from annotation.push import find_dataset
from tests.annotation_data import dialogue, write_run

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "web-annotator-1"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module", autouse=True)
def harness():
    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture
def web_run(argilla_server, tmp_path):
    import argilla as rg

    owner = connect(load_settings())
    user = rg.User(
        username="ann-web", password=PASSWORD, role="annotator", client=owner
    )
    user = user.create()
    owner.workspaces(load_settings().workspace).add_user(user)
    run_dir = write_run(tmp_path / "run-web", [dialogue("ko", n=3)])
    yield run_dir, owner
    for level in Level:
        found = find_dataset(
            owner, dataset_name("normloom", "run-web", level), "normloom"
        )
        if found is not None:
            found.delete()
    user.delete()


def _submitted_by(owner, dataset, username: str) -> list[dict]:
    users = {
        u["id"]: u["username"]
        for u in owner.http_client.get("/api/v1/users").json()["items"]
    }
    records = owner.http_client.get(
        f"/api/v1/datasets/{dataset.id}/records", params={"include": ["responses"]}
    ).json()["items"]
    return [
        resp
        for r in records
        for resp in r.get("responses") or []
        if users[resp["user_id"]] == username and resp["status"] == "submitted"
    ]


def test_answer_in_the_web_ui_comes_back_in_the_pull(web_run, argilla_server, tmp_path):
    from playwright.sync_api import sync_playwright

    from flows.annotate import annotate_dialogues
    from flows.collect import collect_annotations

    assert shutil.which(CHROMIUM), "Debian's chromium package is needed"
    run_dir, owner = web_run
    annotate_dialogues(str(run_dir))
    dataset = find_dataset(owner, "normloom-run-web-turns", "normloom")
    url = argilla_server[1].url

    with sync_playwright() as p:
        browser = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1400, "height": 1100},
        )
        try:
            page = browser.new_page()
            page.goto(f"{url}/sign-in", wait_until="networkidle")
            page.fill("input[name=Username]", "ann-web")
            page.fill("input[type=password]", PASSWORD)
            page.locator("button[type=submit]").click()
            page.get_by_text("normloom-run-web-turns").click()

            # The first pending record is the first turn; the LLM said "adhered".
            page.get_by_text("선배님, 보고서 좀 봐 주실 수 있어요?").first.wait_for()
            page.get_by_text("not_relevant", exact=True).click()
            page.get_by_text("surprise", exact=True).click()
            page.get_by_role("button", name=re.compile("Submit")).click()

            deadline = time.monotonic() + 30
            while not _submitted_by(owner, dataset, "ann-web"):
                assert time.monotonic() < deadline, (
                    "the UI's submit never reached the server"
                )
                page.wait_for_timeout(250)
            page.screenshot(path=str(tmp_path / "after-submit.png"))
        finally:
            browser.close()

    report = collect_annotations(str(run_dir))

    rows = list(jsonlines.open(run_dir / "annotations" / "responses.jsonl"))
    assert [
        (r["record_id"], r["annotator"], r["norm_label"], r["emotion"]) for r in rows
    ] == [("t-ko-adherence-3-0", "ann-web", "not_relevant", "surprise")]
    assert rows[0]["intent"] == "QUE"  # the suggestion, accepted as it was
    assert report["human_llm"]["norm_label"] == {
        "agreement": 0.0,
        "n": 1,
        "confusion": {"not_relevant": {"adhered": 1}},
    }
