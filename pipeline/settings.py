"""All of normloom's settings, read from the environment (prefix ``NORMLOOM_``).

Nested groups use a double underscore: ``NORMLOOM_LLM__BASE_URL``,
``NORMLOOM_CHECKS__MIN_JUDGE_SCORE``. A ``.env`` file in the working directory is read
too.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
CACHE_DIR = Path.home() / ".cache" / "normloom"


class Price(BaseModel):
    """A model's price in USD per million tokens."""

    prompt: float = Field(ge=0, description="USD per 1M prompt tokens.")
    completion: float = Field(ge=0, description="USD per 1M completion tokens.")


# List prices of a few hosted models (USD per 1M tokens); local models cost nothing.
DEFAULT_PRICES = {
    "gpt-4o-mini": Price(prompt=0.15, completion=0.60),
    "gpt-4o": Price(prompt=2.50, completion=10.00),
    "gpt-4.1-mini": Price(prompt=0.40, completion=1.60),
    "gpt-4.1": Price(prompt=2.00, completion=8.00),
    "local": Price(prompt=0.0, completion=0.0),
}


class LLMSettings(BaseModel):
    """Where the language model is and how to call it."""

    base_url: str | None = Field(
        default=None,
        description=(
            "OpenAI-compatible base URL (e.g. https://api.openai.com/v1). "
            "Unset: normloom starts its embedded llama.cpp server."
        ),
    )
    api_key: SecretStr | None = Field(
        default=None, description="API key for the endpoint; never logged or written."
    )
    model: str | None = Field(
        default=None,
        description="Model name sent with every request; required with a base URL.",
    )
    temperature: float = Field(
        default=0.8, description="Sampling temperature of the writing stages."
    )
    stage_temperatures: dict[str, float] = Field(
        default={"labels": 0.0, "judge": 0.0, "refine_judge": 0.0, "grow_judge": 0.0},
        description=(
            "Temperature of the stages named here, by stage: labelling and judging "
            "are greedy by default so that the same input gets the same verdict. A "
            "retry after an unusable reply samples at `temperature` instead."
        ),
    )
    timeout_s: float = Field(
        default=300.0, description="Seconds to wait for one HTTP request."
    )
    max_retries: int = Field(
        default=3, description="Retries of a transient failure (timeouts, 429, 5xx)."
    )
    parse_retries: int = Field(
        default=2,
        description="Extra calls when a reply is truncated, malformed or off-schema.",
    )
    refusal_retries: int = Field(
        default=1, description="Extra calls after the model refuses."
    )
    concurrency: int = Field(
        default=2, ge=1, description="LLM calls in flight at once (HTTP requests)."
    )
    requests_per_minute: int | None = Field(
        default=None,
        ge=1,
        description="Most requests sent per minute; unset: no limit.",
    )
    tokens_per_minute: int | None = Field(
        default=None,
        ge=1,
        description="Most tokens (prompt estimate + max_tokens) per minute; unset: none.",
    )
    backoff_s: float = Field(
        default=1.0,
        ge=0,
        description="First retry waits about this long, doubling; Retry-After wins.",
    )
    prices: dict[str, Price] = Field(
        default_factory=lambda: dict(DEFAULT_PRICES),
        description="USD per 1M prompt/completion tokens by model name (JSON); "
        "replaces the built-in table.",
    )
    json_schema: bool = Field(
        default=True,
        description="Send response_format json_schema (off for servers that reject it).",
    )
    cache_path: Path | None = Field(
        default=None,
        description="SQLite response cache. Unset: <out>/llm_cache.sqlite of the run.",
    )


class BatchSettings(BaseModel):
    """The OpenAI Batch API, used with ``normloom generate --batch``."""

    poll_s: float = Field(default=30.0, gt=0, description="Seconds between polls.")
    completion_window: str = Field(
        default="24h", description="The batch completion window to ask for."
    )
    max_requests: int = Field(
        default=50_000, ge=1, description="Most requests in one batch (OpenAI: 50,000)."
    )
    price_factor: float = Field(
        default=0.5, ge=0, description="Batch price as a share of the list price."
    )


class RunnerSettings(BaseModel):
    """Where the flow's tasks run."""

    dask_address: str | None = Field(
        default=None,
        description="Dask scheduler (tcp://host:8786) to run tasks on; unset: threads.",
    )
    workers: int | None = Field(
        default=None,
        ge=1,
        description="Items processed at once; unset: the LLM concurrency (at least 4).",
    )
    stage_tasks: bool = Field(
        default=True,
        description="Run each stage as its own Prefect task; off: one task per item "
        "(far less orchestration overhead on runs of thousands of dialogues).",
    )


class EmbeddedSettings(BaseModel):
    """The llama.cpp server normloom starts when no base URL is set."""

    model_path: Path | None = Field(
        default=None,
        description="A GGUF file. Unset: the packaged Qwen2.5-Coder-1.5B-Instruct.",
    )
    chat_template: str | None = Field(
        default=None,
        description="A llama.cpp built-in template name (e.g. 'gemma'); unset: the model's own.",
    )
    port: int = Field(default=0, description="Port on 127.0.0.1; 0 picks a free one.")
    parallel: int = Field(default=2, description="Parallel decoding slots.")
    ctx_size: int = Field(default=8192, description="Context size shared by the slots.")
    threads: int = Field(default=0, description="CPU threads; 0 uses every core.")
    cache_dir: Path = Field(
        default=CACHE_DIR,
        description="Where the packaged model parts are joined into one GGUF file.",
    )
    startup_timeout_s: float = Field(
        default=300.0, description="Seconds to wait for the server to load the model."
    )


class GenerationSettings(BaseModel):
    """How much to generate and how hard to refine."""

    per_norm: int = Field(
        default=1, ge=1, description="Scenarios per norm and dialogue type."
    )
    min_turns: int = Field(default=5, description="Fewest turns a dialogue may have.")
    max_turns: int = Field(default=15, description="Most turns a dialogue may have.")
    refine_threshold: int = Field(
        default=4, description="Refinement stops once every judge score reaches this."
    )
    refine_rounds: int = Field(default=3, description="Most revisions of a situation.")
    exemplars: int = Field(default=2, description="Exemplars shown when refining.")
    exemplar_dir: Path = Field(
        default=DATA_DIR / "exemplars", description="Pool of expert exemplars."
    )


class CheckSettings(BaseModel):
    """Thresholds of the rule checks and the LLM judge."""

    min_language_share: float = Field(
        default=0.8,
        description="Share of turns that must be in the target language and script.",
    )
    min_script_share: float = Field(
        default=0.6, description="Share of a turn's letters that must be in the script."
    )
    duplicate_threshold: float = Field(
        default=0.8,
        description="MinHash Jaccard estimate above which two are duplicates.",
    )
    min_repeat_letters: int = Field(
        default=8, description="Turns with fewer letters may repeat earlier turns."
    )
    max_repeated_turns: int = Field(
        default=0, description="Turns that may repeat an earlier turn of the dialogue."
    )
    min_judge_score: int = Field(
        default=3, description="Lowest judge score (each quality axis) that passes."
    )
    judge: bool = Field(default=True, description="Run the LLM judge at all.")


class ReleaseSettings(BaseModel):
    """Where releases go, how they are split, licensed and pushed to the Hub."""

    out_dir: Path = Field(
        default=Path("releases"), description="Directory of the versioned releases."
    )
    train: float = Field(
        default=0.8, ge=0, le=1, description="Share of norms in train."
    )
    validation: float = Field(
        default=0.1, ge=0, le=1, description="Share of norms in validation."
    )
    test: float = Field(default=0.1, ge=0, le=1, description="Share of norms in test.")
    license: str = Field(
        default="cc-by-4.0", description="License id written in the dataset card."
    )
    hub_token: SecretStr | None = Field(
        default=None,
        description=(
            "Hugging Face token for --push-to-hub. Unset: huggingface_hub's own "
            "(HF_TOKEN, or the token `hf auth login` saved)."
        ),
    )

    def ratios(self) -> dict[str, float]:
        """Return the split shares by split name."""
        return {"train": self.train, "validation": self.validation, "test": self.test}


class GrowthSettings(BaseModel):
    """How a few seed norms per culture and category grow into a norm bank."""

    k: int = Field(
        default=10, ge=1, le=40, description="Sub-norms per culture and category."
    )
    tones: list[str] = Field(
        default=["formal", "neutral", "casual"],
        description="Tones the sub-norms cover.",
    )
    honorifics: list[str] = Field(
        default=["honorific speech", "plain speech"],
        description="Uses of honorifics the sub-norms cover.",
    )
    distances: list[str] = Field(
        default=["close (family, friends)", "acquaintance", "stranger", "hierarchical"],
        description="Relational distances the sub-norms cover.",
    )
    rounds: int = Field(
        default=2,
        ge=1,
        description="Rounds of asking while duplicates or rejects leave fewer than k.",
    )
    duplicate_threshold: float = Field(
        default=0.6,
        description="MinHash Jaccard estimate at which two norms are duplicates.",
    )


class ArgillaSettings(BaseModel):
    """Where the Argilla server is, who annotates, and the local server normloom runs."""

    api_url: str | None = Field(
        default=None,
        description=(
            "Any Argilla 2.x server (e.g. https://my-space.hf.space). Unset: the "
            "local server started by `normloom argilla serve`."
        ),
    )
    api_key: SecretStr | None = Field(
        default=None,
        description=(
            "API key of an owner or admin; never logged or written. Unset with the "
            "local server: the key it generated."
        ),
    )
    workspace: str = Field(
        default="normloom", description="Workspace the datasets are created in."
    )
    annotators: list[str] = Field(
        default_factory=list,
        description="Usernames added to the workspace so they see the datasets.",
    )
    min_submitted: int = Field(
        default=1,
        ge=1,
        description="Submitted answers a record needs before Argilla calls it done.",
    )
    dataset_prefix: str = Field(
        default="normloom", description="Datasets are named <prefix>-<run>-turns etc."
    )
    batch_size: int = Field(
        default=100, ge=1, le=500, description="Records sent per request."
    )
    timeout_s: float = Field(default=60.0, description="Seconds per HTTP request.")
    exemplar_dir: Path | None = Field(
        default=None,
        description=(
            "Directory that collected exemplars are also appended to; unset: only "
            "<run>/annotations/exemplars.jsonl is written."
        ),
    )
    settings_file: Path | None = Field(
        default=None,
        description="JSON or TOML file whose keys override these settings.",
    )
    # The local server.
    home: Path = Field(
        default=CACHE_DIR / "argilla",
        description="Database, logs and pid files of the local server.",
    )
    venv: Path = Field(
        default=CACHE_DIR / "argilla-venv",
        description="Virtualenv the local argilla-server is installed in on first use.",
    )
    server_requirement: str = Field(
        default="argilla-server==2.8.0",
        description="What pip installs into that virtualenv.",
    )
    port: int = Field(
        default=6900, description="Local server port on 127.0.0.1; 0 picks a free one."
    )
    owner: str = Field(default="argilla", description="Local server owner's username.")
    owner_password: SecretStr | None = Field(
        default=None,
        description="Local owner's password. Unset: 12345678, for local use only.",
    )
    startup_timeout_s: float = Field(
        default=180.0, description="Seconds to wait for the local server to answer."
    )


class Settings(BaseSettings):
    """normloom's settings."""

    model_config = SettingsConfigDict(
        env_prefix="NORMLOOM_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    llm: LLMSettings = Field(default_factory=LLMSettings)
    embedded: EmbeddedSettings = Field(default_factory=EmbeddedSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    checks: CheckSettings = Field(default_factory=CheckSettings)
    release: ReleaseSettings = Field(default_factory=ReleaseSettings)
    growth: GrowthSettings = Field(default_factory=GrowthSettings)
    argilla: ArgillaSettings = Field(default_factory=ArgillaSettings)
    batch: BatchSettings = Field(default_factory=BatchSettings)
    runner: RunnerSettings = Field(default_factory=RunnerSettings)
    cultures_path: Path | None = Field(
        default=None,
        description="Extra cultures and languages (JSON) merged over the built-in ones.",
    )

    def public_dict(self) -> dict:
        """Return the settings as plain data with every secret removed."""
        data = self.model_dump(mode="json")
        data["llm"].pop("api_key", None)
        data["release"].pop("hub_token", None)
        data["argilla"].pop("api_key", None)
        data["argilla"].pop("owner_password", None)
        return data


_SECRET_WORDS = ("key", "token", "password", "secret")


def load_settings() -> Settings:
    """Read the settings; a bad value is named by its environment variable.

    Raises:
        ConfigError: A setting does not parse; the message names each variable,
            its value (never a secret's) and what it should be.
    """
    from pydantic import ValidationError

    from pipeline.errors import ConfigError

    try:
        return Settings()
    except ValidationError as err:
        lines = []
        for e in err.errors():
            name = "NORMLOOM_" + "__".join(str(p) for p in e["loc"]).upper()
            shown = (
                ""
                if any(w in name.lower() for w in _SECRET_WORDS)
                else f"={e.get('input')!r}"
            )
            lines.append(f"  - {name}{shown}: {e['msg']}")
        raise ConfigError(
            "Bad setting(s), from the environment or .env:\n"
            + "\n".join(lines)
            + "\nFix or unset them (README, Settings)."
        ) from None
