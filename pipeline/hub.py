"""Pushing a release to the Hugging Face Hub, or saying why it was not pushed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from pipeline.errors import ReleaseError

log = logging.getLogger(__name__)

SKIP_MESSAGE = (
    "Skipping the push to {repo}: no Hugging Face token is set. Set HF_TOKEN or "
    "NORMLOOM_RELEASE__HUB_TOKEN (or run `hf auth login`) and publish again; the "
    "release is complete on disk."
)


@dataclass(frozen=True)
class PushResult:
    """What happened to a push: done (with the dataset's URL) or skipped (and why)."""

    pushed: bool
    message: str
    url: str | None = None


def _token(configured: SecretStr | None) -> str | None:
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value()
    from huggingface_hub import get_token

    return get_token()


def push_release(
    version_dir: Path, repo_id: str, version: str, token: SecretStr | None = None
) -> PushResult:
    """Upload a release (card, plots, parquet, JSONL, changelog) to a dataset repo.

    The arrow/ copy is not uploaded: the Hub reads the parquet files. The commit is
    tagged with the version.
    """
    secret = _token(token)
    if not secret:
        message = SKIP_MESSAGE.format(repo=repo_id)
        log.debug(message)
        return PushResult(pushed=False, message=message)

    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(token=secret)
    try:
        api.create_repo(repo_id, repo_type="dataset", exist_ok=True)
        api.upload_folder(
            repo_id=repo_id,
            folder_path=version_dir,
            repo_type="dataset",
            ignore_patterns=["arrow/*", "report.html"],
            commit_message=f"normloom release {version}",
        )
        changelog = Path(version_dir).parent / "CHANGELOG.md"
        if changelog.exists():
            api.upload_file(
                path_or_fileobj=changelog,
                path_in_repo="CHANGELOG.md",
                repo_id=repo_id,
                repo_type="dataset",
                commit_message=f"changelog of {version}",
            )
        api.create_tag(repo_id, tag=version, repo_type="dataset", exist_ok=True)
    except (HfHubHTTPError, OSError) as err:
        raise ReleaseError(
            f"Could not push release {version} to the Hub dataset {repo_id}: {err}. "
            "Check the token's write access and the repo name (owner/name); the "
            "release on disk is complete."
        ) from err
    url = f"https://huggingface.co/datasets/{repo_id}"
    log.info("Pushed release %s to %s", version, url)
    return PushResult(
        pushed=True, message=f"Pushed release {version} to {url}", url=url
    )
