"""Push, answer and pull against the real local Argilla server (our launcher).

The server, Redis and the SQL search engine are the real ones; annotators answer
through the same HTTP API the web UI uses, logged in with their own passwords.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import jsonlines
import pytest
from prefect.testing.utilities import prefect_test_harness

from annotation.client import connect, load_settings
from annotation.datasets import Level, dataset_name
from annotation.push import find_dataset, push_records
from annotation.records import build_records
from pipeline.errors import AnnotationError, ArgillaServerError
from tests.annotation_data import dialogue, write_run

pytestmark = pytest.mark.slow

PASSWORD = "annotate-me-1"
LABELS_A = ["adhered", "adhered", "violated", "violated"]
LABELS_B = ["adhered", "violated", "violated", "violated"]


@pytest.fixture(scope="module", autouse=True)
def harness():
    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="module")
def owner(argilla_server):
    return connect(load_settings())


class Annotator:
    """A user of the server who answers through the HTTP API with a login token."""

    def __init__(self, url: str, username: str, user_id: str):
        self.username, self.id = username, user_id
        token = httpx.post(
            f"{url}/api/v1/token", data={"username": username, "password": PASSWORD}
        ).json()["access_token"]
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def answer(self, record_id: str, values: dict, status: str = "submitted") -> None:
        body = {
            "values": {q: {"value": v} for q, v in values.items()},
            "status": status,
        }
        reply = self.http.post(f"/api/v1/records/{record_id}/responses", json=body)
        assert reply.status_code == 201, reply.text

    def search(self, dataset_id: str, body: dict) -> int:
        return self.find(dataset_id, body)["total"]

    def find(self, dataset_id: str, body: dict) -> dict:
        reply = self.http.post(
            f"/api/v1/me/datasets/{dataset_id}/records/search", json=body
        )
        assert reply.status_code == 200, reply.text
        return reply.json()


@pytest.fixture(scope="module")
def annotators(owner, argilla_server):
    import argilla as rg

    workspace = owner.workspaces(load_settings().workspace)
    made = []
    for name in ("ann-a", "ann-b", "ann-c"):
        user = rg.User(username=name, password=PASSWORD, role="annotator", client=owner)
        user = user.create()
        workspace.add_user(user)
        made.append(user)
    url = argilla_server[1].url
    yield {u.username: Annotator(url, u.username, str(u.id)) for u in made}
    for user in made:
        user.delete()


@pytest.fixture(scope="module")
def run(tmp_path_factory, owner):
    run_dir = write_run(
        tmp_path_factory.mktemp("runs") / "run-api",
        [dialogue("en", n=4), dialogue("zh", "v2r", 4), dialogue("ko")],
    )
    yield run_dir
    for level in Level:
        found = find_dataset(
            owner, dataset_name("normloom", "run-api", level), "normloom"
        )
        if found is not None:
            found.delete()


def _server_ids(owner, level: Level) -> dict[str, str]:
    dataset = find_dataset(
        owner, dataset_name("normloom", "run-api", level), "normloom"
    )
    reply = owner.http_client.get(
        f"/api/v1/datasets/{dataset.id}/records", params={"limit": 1000}
    )
    return {r["external_id"]: r["id"] for r in reply.json()["items"]}


def test_push_then_repush_keeps_the_count_and_updates_suggestions(
    run, owner, monkeypatch
):
    from flows.annotate import annotate_dialogues

    # Three batches of at most 4 turn records: none overwrites another.
    monkeypatch.setenv("NORMLOOM_ARGILLA__BATCH_SIZE", "4")
    first = annotate_dialogues(str(run))
    assert first["datasets"]["dialogues"] == {
        "name": "normloom-run-api-dialogues",
        "pushed": 3,
        "on_server": 3,
        "seconds": first["datasets"]["dialogues"]["seconds"],
        "created": True,
    }
    assert first["datasets"]["turns"]["on_server"] == 11  # 4 + 4 + 3 turns

    # The LLM's rationale of one turn changes; the same records are updated.
    rows = list(jsonlines.open(run / "dialogues.jsonl"))
    rows[0]["turns"][1]["labels"]["rationale"] = "Agreeing right away is polite."
    with jsonlines.open(run / "dialogues.jsonl", mode="w") as writer:
        writer.write_all(rows)
    again = annotate_dialogues(str(run))

    assert again["datasets"]["turns"]["on_server"] == 11
    assert again["datasets"]["dialogues"]["on_server"] == 3
    assert again["datasets"]["turns"]["created"] is False
    dataset = find_dataset(owner, "normloom-run-api-turns", "normloom")
    record = next(
        r
        for r in dataset.records(with_suggestions=True)
        if r.id == "t-en-adherence-4-1"
    )
    assert record.suggestions["rationale"].value == "Agreeing right away is polite."
    assert record.suggestions["norm_label"].agent == "scripted-model"
    assert record.fields["turn"] == "Sure, happy to."  # fields went with the update
    push = json.loads((run / "annotations" / "push.json").read_text("utf-8"))
    assert push["datasets"]["turns"]["pushed"] == 11


def test_annotators_from_a_settings_file_join_the_workspace(run, owner, tmp_path):
    import argilla as rg

    from flows.annotate import annotate_dialogues

    user = rg.User(username="ann-d", password=PASSWORD, role="annotator", client=owner)
    user = user.create()
    try:
        settings = tmp_path / "argilla.json"
        settings.write_text(json.dumps({"annotators": ["ann-d"]}))
        annotate_dialogues(str(run), settings_file=str(settings))
        members = {u.username for u in owner.workspaces("normloom").users}
        assert "ann-d" in members

        settings.write_text(json.dumps({"annotators": ["ann-d", "nobody-here"]}))
        with pytest.raises(
            AnnotationError, match="Annotator\\(s\\) nobody-here do not"
        ):
            annotate_dialogues(str(run), settings_file=str(settings))
    finally:
        user.delete()


def test_server_refusal_names_the_record(run, owner):
    dataset = find_dataset(owner, "normloom-run-api-turns", "normloom")
    records = build_records([dialogue("en", n=4)])[1:3]
    bad = records[1].model_copy(
        update={"metadata": {**records[1].metadata, "turn_index": "second"}}
    )
    with pytest.raises(ArgillaServerError) as err:
        push_records(dataset, [records[0], bad], batch_size=10)

    assert err.value.record_id == "t-en-adherence-4-1"
    assert "record t-en-adherence-4-1" in str(err.value)
    assert "HTTP 422" in str(err.value)


def test_invalid_run_is_refused_before_upload(tmp_path, owner):
    from flows.annotate import annotate_dialogues

    bad = dialogue("en").model_copy(update={"id": "broken", "situation": " "})
    run_dir = write_run(tmp_path / "run-bad", [bad])
    with pytest.raises(AnnotationError, match="record d-broken: field 'situation'"):
        annotate_dialogues(str(run_dir))
    assert find_dataset(owner, "normloom-run-bad-turns", "normloom") is None


def test_answers_of_two_annotators_come_back_submitted_only(run, owner, annotators):
    from flows.collect import collect_annotations

    turns, dialogues = (
        _server_ids(owner, Level.TURNS),
        _server_ids(owner, Level.DIALOGUES),
    )
    a, b, c = annotators["ann-a"], annotators["ann-b"], annotators["ann-c"]
    for i, (la, lb) in enumerate(zip(LABELS_A, LABELS_B, strict=True)):
        common = {"intent": "QUE", "emotion": "neutral", "rationale": f"turn {i}"}
        a.answer(turns[f"t-en-adherence-4-{i}"], {"norm_label": la, **common})
        b.answer(turns[f"t-en-adherence-4-{i}"], {"norm_label": lb, **common})
    ko = turns["t-ko-adherence-3-0"]
    a.answer(ko, {"norm_label": "adhered", "intent": "QUE", "emotion": "joy"})
    b.answer(ko, {"norm_label": "violated"}, status="draft")
    c.answer(ko, {}, status="discarded")
    for who, nat, cult in ((a, 4, 5), (b, 5, 4)):
        who.answer(
            dialogues["d-en-adherence-4"],
            {
                "naturalness": nat,
                "cultural_appropriateness": cult,
                "norm_correct": "yes",
                "arc_matches": "yes",
            },
        )

    report = collect_annotations(str(run))

    out = run / "annotations"
    responses = list(jsonlines.open(out / "responses.jsonl"))
    assert len(responses) == 11  # 4 turns x 2 + 1 ko (submitted only) + 2 dialogue
    ko_rows = [r for r in responses if r["record_id"] == "t-ko-adherence-3-0"]
    assert [(r["annotator"], r["norm_label"], r["emotion"]) for r in ko_rows] == [
        ("ann-a", "adhered", "joy")
    ]
    dialogue_rows = [r for r in responses if r["dataset"] == "dialogues"]
    assert {r["turn_index"] for r in dialogue_rows} == {None}
    assert sorted(r["naturalness"] for r in dialogue_rows) == [4, 5]

    agreement = json.loads((out / "agreement.json").read_text("utf-8"))
    assert agreement == {k: report[k] for k in agreement}
    # Computed by hand in test_annotation_resolve: the same labels on the en turns.
    assert agreement["alpha"]["norm_label"] == 0.5333
    # One dialogue rated 5 and 4: D_o = D_e (n = 2), so alpha is exactly 0.
    assert agreement["alpha"]["cultural_appropriateness"] == 0.0
    assert agreement["alpha"]["norm_correct"] is None  # both said yes: no variation
    assert agreement["n_responses"] == 11
    assert agreement["n_records"] == 6
    # Gold (humans): adhered, adhered (tie), violated, violated, adhered; LLM: adhered.
    assert agreement["human_llm"]["norm_label"] == {
        "agreement": 0.6,
        "n": 5,
        "confusion": {"adhered": {"adhered": 3}, "violated": {"adhered": 2}},
    }
    resolved = list(jsonlines.open(out / "resolved.jsonl"))
    assert [
        (r["turn_index"], r["tie"])
        for r in resolved
        if r["dialogue_id"] == "en-adherence-4"
    ] == [
        (0, False),
        (1, True),
        (2, False),
        (3, False),
    ]
    assert [r["n_annotators"] for r in resolved] == [2, 2, 2, 2, 1]
    assert list(jsonlines.open(out / "dialogue_resolved.jsonl")) == [
        {
            "dialogue_id": "en-adherence-4",
            "naturalness": 4.5,
            "cultural_appropriateness": 4.5,
            "norm_correct": "yes",
            "arc_matches": "yes",
            "n_annotators": 2,
        }
    ]
    exemplars = list(jsonlines.open(out / "exemplars.jsonl"))
    assert [e["id"] for e in exemplars] == ["human-en-adherence-4"]


def test_search_engine_serves_the_annotation_queue(run, owner, annotators):
    dataset = find_dataset(owner, "normloom-run-api-turns", "normloom")
    a, c = annotators["ann-a"], annotators["ann-c"]

    def pending(extra: list | None = None) -> dict:
        status = {
            "type": "terms",
            "scope": {"entity": "response", "property": "status"},
            "values": ["pending"],
        }
        return {"filters": {"and": [status, *(extra or [])]}}

    # ann-a answered 5 turns, ann-c discarded 1: pending counts are per user.
    assert a.search(str(dataset.id), pending()) == 6
    assert c.search(str(dataset.id), pending()) == 10
    submitted = pending()
    submitted["filters"]["and"][0]["values"] = ["submitted"]
    assert a.search(str(dataset.id), submitted) == 5

    def text(q: str, field: str | None = "turn") -> dict:
        return {"query": {"text": {"q": q, **({"field": field} if field else {})}}}

    assert a.search(str(dataset.id), text("감사합니다")) == 1  # stored as \uXXXX
    assert a.search(str(dataset.id), text("THANK YOU")) == 1
    assert a.search(str(dataset.id), text("礼貌地", field=None)) == 4  # the zh norm

    culture = {
        "type": "terms",
        "scope": {"entity": "metadata", "metadata_property": "culture"},
        "values": ["kr"],
    }
    late = {
        "type": "range",
        "scope": {"entity": "metadata", "metadata_property": "turn_index"},
        "ge": 3,
    }
    sure = {
        "type": "range",
        "scope": {
            "entity": "suggestion",
            "question": "norm_label",
            "property": "score",
        },
        "ge": 0.9,
    }
    assert a.search(str(dataset.id), {"filters": {"and": [culture]}}) == 3
    assert a.search(str(dataset.id), {"filters": {"and": [late]}}) == 2
    assert a.search(str(dataset.id), {"filters": {"and": [sure]}}) == 11
    assert a.search(str(dataset.id), pending([culture])) == 2

    def ids(body: dict) -> list[str]:
        return [
            i["record"]["external_id"] for i in a.find(str(dataset.id), body)["items"]
        ]

    # No sort: the order records were added, so a dialogue's turns come in order.
    assert ids({"filters": {"and": [culture]}}) == [
        "t-ko-adherence-3-0",
        "t-ko-adherence-3-1",
        "t-ko-adherence-3-2",
    ]
    by_turn = {
        "filters": {"and": [culture]},
        "sort": [
            {
                "scope": {"entity": "metadata", "metadata_property": "turn_index"},
                "order": "desc",
            }
        ],
    }
    assert ids(by_turn)[0] == "t-ko-adherence-3-2"
    by_answer = {
        "filters": {"and": [culture]},
        "sort": [
            {"scope": {"entity": "response", "property": "status"}, "order": "desc"}
        ],
    }
    assert ids(by_answer)[0] == "t-ko-adherence-3-0"  # answered; SQLite puts NULL last

    metrics = a.http.get(f"/api/v1/me/datasets/{dataset.id}/metrics").json()
    assert metrics["responses"] == {
        "total": 11,
        "submitted": 5,
        "discarded": 0,
        "draft": 0,
        "pending": 6,
    }
    progress = owner.http_client.get(f"/api/v1/datasets/{dataset.id}/progress").json()
    assert (progress["total"], progress["completed"]) == (11, 5)  # min_submitted 1
    terms = owner.http_client.get(
        f"/api/v1/metadata-properties/{dataset.settings.metadata['culture'].id}/metrics"
    ).json()
    assert terms["values"] == [
        {"term": "cn", "count": 4},
        {"term": "us", "count": 4},
        {"term": "kr", "count": 3},
    ]


def test_raising_min_submitted_recomputes_record_status_in_the_worker(
    run, owner, annotators, monkeypatch
):
    from flows.annotate import annotate_dialogues

    dataset = find_dataset(owner, "normloom-run-api-turns", "normloom")

    def completed() -> int:
        path = f"/api/v1/datasets/{dataset.id}/progress"
        return owner.http_client.get(path).json()["completed"]

    assert completed() == 5  # every answered turn: one submitted answer is enough
    monkeypatch.setenv("NORMLOOM_ARGILLA__MIN_SUBMITTED", "2")
    annotate_dialogues(str(run))

    # The rq worker (with our engine registered) recomputes the statuses: only the
    # four en turns have two submitted answers.
    deadline = time.monotonic() + 60
    while completed() != 4 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert completed() == 4
    monkeypatch.setenv("NORMLOOM_ARGILLA__MIN_SUBMITTED", "1")
    annotate_dialogues(str(run))


def test_the_api_key_is_in_no_output(run, argilla_server, capfd):
    key = argilla_server[1].api_key
    assert len(key) > 20
    for path in Path(run).rglob("*"):
        if path.is_file():
            assert key not in path.read_text("utf-8", errors="replace"), path
    for path in argilla_server[0].logs.glob("*.log"):
        assert key not in path.read_text("utf-8", errors="replace"), path
    out, err = capfd.readouterr()
    assert key not in out + err
    assert key not in json.dumps(dict(os.environ))

    # Nor in what Prefect keeps: flow and task runs with their parameters, and logs.
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as prefect:
        kept = [
            *prefect.read_flow_runs(),
            *prefect.read_task_runs(),
            *prefect.read_logs(),
        ]
    assert any("run_dir" in getattr(r, "parameters", {}) for r in kept)
    assert any(getattr(r, "name", "").startswith("push-records") for r in kept)
    assert key not in json.dumps([r.model_dump(mode="json") for r in kept])
