"""The publish-dataset flow: runs in, a versioned release with card and report out."""

from __future__ import annotations

import shutil
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from pipeline.card import COUNT_COLUMNS, markdown_table, render_card
from pipeline.changelog import add_entry, changelog_entry
from pipeline.errors import ReleaseError
from pipeline.hub import push_release
from pipeline.plots import draw_all
from pipeline.release import (
    check_ratios,
    list_releases,
    release_dir,
    rows_digest,
    save_release,
    split_rows,
    to_dataset_dict,
    unchanged_since,
    write_metadata,
)
from pipeline.release_rows import RunData, build_rows, load_run
from pipeline.release_stats import ReleaseStats, compute_stats
from pipeline.report import write_report
from pipeline.settings import Settings

TASK = {"cache_policy": NO_CACHE}


@task(name="load-runs", **TASK)
def load_runs(run_dirs: list[str]) -> list[RunData]:
    """Read the accepted dialogues and annotations of every run."""
    runs = [load_run(Path(d)) for d in run_dirs]
    get_run_logger().info(
        "Read %d runs: %d accepted dialogues, %d human-labelled turns",
        len(runs),
        sum(len(r.dialogues) for r in runs),
        sum(len(r.turn_labels) for r in runs),
    )
    return runs


@task(name="split-dialogues", **TASK)
def split_dialogues(runs: list[RunData], ratios: dict[str, float]) -> dict:
    """Join dialogues with their labels and sort them into splits by norm."""
    rows = build_rows(runs)
    if not rows:
        raise ReleaseError(
            "The runs hold no accepted dialogue, so there is nothing to publish: "
            f"{', '.join(str(r.path) for r in runs)}. Generate first, or pass other "
            "run directories."
        )
    return split_rows(rows, ratios)


@task(name="save-splits", **TASK)
def save_splits(splits: dict, directory: Path) -> list[str]:
    """Write the splits as parquet, JSONL and arrow; return the split names written."""
    data = to_dataset_dict(splits)
    save_release(data, directory)
    return list(data)


@task(name="draw-plots", **TASK)
def draw_plots(stats: ReleaseStats, directory: Path) -> dict[str, Path]:
    """Draw the release's PNG plots."""
    return draw_all(stats, directory / "plots")


@task(name="write-card", **TASK)
def write_card(
    stats: ReleaseStats,
    version: str,
    written: list[str],
    plots: dict[str, Path],
    directory: Path,
    runs: list[str],
    license_id: str,
) -> Path:
    """Write the dataset card, README.md with the Hub's YAML header."""
    card = render_card(stats, version, written, plots, license_id, runs)
    path = directory / "README.md"
    path.write_text(card, "utf-8")
    return path


@task(name="write-changelog", **TASK)
def write_changelog(meta: dict, out: Path) -> str:
    """Add the release's entry to releases/CHANGELOG.md and return the entry."""
    before = [r for r in list_releases(out) if r["version"] != meta["version"]]
    entry = changelog_entry(meta, before[-1] if before else None)
    add_entry(out / "CHANGELOG.md", entry)
    return entry


@task(name="push-to-hub", **TASK)
def upload_release(directory: Path, repo: str, version: str) -> dict:
    """Push the release to the Hub, or say clearly why not."""
    result = push_release(directory, repo, version, Settings().release.hub_token)
    logger = get_run_logger()
    (logger.info if result.pushed else logger.warning)(result.message)
    return {"pushed": result.pushed, "message": result.message, "url": result.url}


def _publish_artifacts(stats: ReleaseStats, version: str, final: Path) -> None:
    report = (final / "report.html").resolve()
    counts = stats.counts.rename(columns=COUNT_COLUMNS)
    create_markdown_artifact(
        key="release-summary",
        markdown=(
            f"# normloom release {version}\n\n"
            f"{markdown_table(counts, list(COUNT_COLUMNS.values()))}\n\n"
            f"Card: `{final / 'README.md'}`  \nReport: [{report.name}]"
            f"({report.as_uri()})"
        ),
        description=f"normloom release {version}",
    )
    create_link_artifact(
        key="release-report",
        link=report.as_uri(),
        link_text=f"HTML report of release {version}",
        description="Plots and tables of the release (open the file on this machine).",
    )


@flow(name="publish-dataset")
def publish_dataset(
    run_dirs: list[str],
    version: str | None = None,
    out: str | None = None,
    push_to_hub: str | None = None,
    only_if_changed: bool = False,
) -> dict:
    """Publish runs as a versioned release: splits, card, plots, report, changelog.

    Args:
        run_dirs: Run directories written by generate-dialogues (and annotated by
            collect-annotations, when it ran).
        version: The release's version; by default the next minor version
            (0.1.0 first).
        out: Directory of the releases (default the setting release.out_dir).
        push_to_hub: A Hub dataset repo (owner/name) to push the release to; skipped,
            with a warning, when no token is set.
        only_if_changed: Make no release when the rows are those of the latest one
            (for schedules: an idle week adds no release).
    """
    settings = Settings()
    out_dir = Path(out) if out else settings.release.out_dir
    version, final = release_dir(out_dir, version)
    runs = load_runs(run_dirs)
    splits = split_dialogues(runs, check_ratios(settings.release.ratios()))

    digest = rows_digest(splits)
    latest = unchanged_since(out_dir, digest) if only_if_changed else None
    if latest is not None:
        message = f"Nothing changed since release {latest}; no new release made."
        get_run_logger().info(message)
        return {"version": None, "unchanged_since": latest, "message": message}

    # Built beside its final place and moved there at the end, so that a failed
    # publish leaves no half release behind to block the version.
    work = out_dir / f".{version}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    written = save_splits(splits, work)

    stats = compute_stats({k: v for k, v in splits.items() if v}, runs)
    plots = draw_plots(stats, work)
    run_names = [str(r.path) for r in runs]
    write_card(
        stats, version, written, plots, work, run_names, settings.release.license
    )
    meta = write_metadata(
        work,
        version,
        {k: splits[k] for k in written},
        {"runs": run_names, "rows_sha256": digest},
    )

    work.rename(final)
    entry = write_changelog(meta, out_dir)
    plots = {name: final / "plots" / path.name for name, path in plots.items()}
    write_report(stats, version, plots, entry, final / "report.html")
    _publish_artifacts(stats, version, final)

    pushed = upload_release(final, push_to_hub, version) if push_to_hub else None
    get_run_logger().info("Release %s is in %s", version, final)
    return {
        "version": version,
        "path": str(final),
        "splits": {k: len(splits[k]) for k in written},
        "card": str(final / "README.md"),
        "report": str(final / "report.html"),
        "changelog": entry,
        "push": pushed,
    }
