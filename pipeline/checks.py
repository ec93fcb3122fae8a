"""Rule checks applied to a generated dialogue before the LLM judge sees it.

Each check returns a ``CheckResult``; ``run_rule_checks`` runs them all in order and
``failed_reasons`` turns the failures into the reasons stored on a rejected record.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import cache

from datasketch import MinHash, MinHashLSH
from lingua import Language as LinguaLanguage
from lingua import LanguageDetector, LanguageDetectorBuilder

from pipeline.cultures import Language, load_registry
from pipeline.errors import ConfigError
from pipeline.schemas import (
    ArcStage,
    CheckResult,
    DialogueType,
    Intent,
    LabelledTurn,
    NormLabel,
    nfc,
)
from pipeline.settings import CheckSettings, GenerationSettings

# Languages a generated turn is often written in by mistake; the detector must know
# them, or it would force such a turn onto the nearest registry language.
CONFUSERS = frozenset({"ENGLISH", "JAPANESE", "SPANISH", "FRENCH", "GERMAN"})

# Below this many letters lingua guesses more than it detects.
MIN_DETECT_LETTERS = 3

NUM_PERM = 128
SHINGLE = 3

_SPACE = re.compile(r"\s+")


def check_turn_count(turns: list[LabelledTurn], gen: GenerationSettings) -> CheckResult:
    """Check that the dialogue has between ``min_turns`` and ``max_turns`` turns.

    Args:
        turns: The labelled turns of the dialogue.
        gen: Generation settings holding the bounds (both inclusive).

    Returns:
        The ``turn_count`` result.
    """
    count = len(turns)
    passed = gen.min_turns <= count <= gen.max_turns
    detail = (
        f"{count} turns"
        if passed
        else f"{count} turns, expected {gen.min_turns} to {gen.max_turns}"
    )
    return CheckResult(name="turn_count", passed=passed, detail=detail)


def _lingua(name: str) -> LinguaLanguage:
    """Return lingua's enum member called ``name``."""
    try:
        return LinguaLanguage.from_str(name)
    except ValueError as err:
        raise ConfigError(
            f"Unknown lingua language '{name}'. Expected a member name of lingua's "
            "Language enum (e.g. ENGLISH, CHINESE, KOREAN); fix the 'lingua' field "
            "of this language in the culture registry."
        ) from err


@cache
def _detector(names: frozenset[str]) -> LanguageDetector:
    """Return a lingua detector for the languages ``names``, built once per set."""
    return LanguageDetectorBuilder.from_languages(*map(_lingua, sorted(names))).build()


def detector_for(language: Language) -> LanguageDetector:
    """Return the cached detector that knows ``language``.

    It knows every language of the built-in registry, the common confusers and
    ``language`` itself. Languages added only through ``cultures_path`` are known
    to the detector of their own checks, not to those of other languages.
    """
    names = {lang.lingua.upper() for lang in load_registry().languages.values()}
    return _detector(frozenset(names | CONFUSERS | {language.lingua.upper()}))


def script_share(text: str, script: str) -> tuple[float, int]:
    """Return the share of letters in ``text`` of ``script``, and the letter count.

    A letter is in the script when its Unicode name starts with ``script`` (LATIN,
    CJK, HANGUL, ...). A text without letters has a share of 1.0.
    """
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return 1.0, 0
    prefix = script.upper()
    inside = sum(unicodedata.name(c, "").startswith(prefix) for c in letters)
    return inside / len(letters), len(letters)


def check_language(
    turns: list[LabelledTurn], language: Language, checks: CheckSettings
) -> CheckResult:
    """Check that enough turns are written in ``language`` and its script.

    A turn is in the language when at least ``min_script_share`` of its letters are
    in the language's script and lingua detects the language. Turns with fewer than
    three letters are judged on script alone; turns without letters (``...``) count
    as in the language, since nothing in them contradicts it.

    Args:
        turns: The labelled turns of the dialogue.
        language: The language the dialogue must be written in.
        checks: Check settings holding both thresholds.

    Returns:
        The ``language`` result; its detail names every offending turn index with its
        script share and what lingua detected.
    """
    if not turns:
        return CheckResult(name="language", passed=False, detail="no turns")
    detector = detector_for(language)
    target = _lingua(language.lingua)

    offending = []
    for turn in turns:
        share, letters = script_share(turn.text, language.script)
        detected = None
        if letters >= MIN_DETECT_LETTERS:
            detected = detector.detect_language_of(turn.text)
        script_ok = share >= checks.min_script_share
        lang_ok = letters < MIN_DETECT_LETTERS or detected == target
        if not (script_ok and lang_ok):
            found = detected.name.title() if detected else "nothing"
            offending.append(
                f"turn {turn.index} ({language.script} {share:.0%}, detected {found})"
            )

    inside = len(turns) - len(offending)
    share = inside / len(turns)
    detail = f"{inside}/{len(turns)} turns in {language.name}"
    if offending:
        detail += "; not: " + ", ".join(offending)
    passed = share >= checks.min_language_share
    return CheckResult(name="language", passed=passed, detail=detail)


def _indexes(turns: list[LabelledTurn]) -> str:
    return ", ".join(str(t.index) for t in turns)


def _arc_adherence(turns: list[LabelledTurn]) -> list[str]:
    """Return the problems of an adherence dialogue."""
    problems = []
    violated = [t for t in turns if t.labels.norm_label == NormLabel.VIOLATED]
    if violated:
        problems.append(f"adherence dialogue has violated turn(s) {_indexes(violated)}")
    if not any(t.labels.norm_label == NormLabel.ADHERED for t in turns):
        problems.append("adherence dialogue has no turn labelled adhered")
    return problems


def _arc_violation(turns: list[LabelledTurn]) -> list[str]:
    """Return the problems of a violation dialogue."""
    first = next(
        (i for i, t in enumerate(turns) if t.labels.norm_label == NormLabel.VIOLATED),
        None,
    )
    if first is None:
        return ["violation dialogue has no turn labelled violated"]

    repairs = [
        t
        for t in turns[first + 1 :]
        if t.labels.arc_stage == ArcStage.REPAIR
        or (t.labels.norm_label == NormLabel.ADHERED and t.labels.intent == Intent.APO)
    ]
    if repairs:
        return [
            f"violation dialogue is repaired after the violation at turn "
            f"{turns[first].index}: turn(s) {_indexes(repairs)}"
        ]
    return []


V2R_ORDER = (
    ArcStage.VIOLATION,
    ArcStage.RECOGNITION,
    ArcStage.REPAIR,
    ArcStage.RESOLUTION,
)


def _arc_v2r(turns: list[LabelledTurn]) -> list[str]:
    """Return the problems of a violation-to-resolution dialogue."""
    problems = []
    stages = [
        t.labels.arc_stage
        for t in turns
        if t.labels.arc_stage not in (None, ArcStage.SETUP)
    ]

    # Matching each stage at its first occurrence after the previous one finds the
    # order whenever any subsequence would.
    position = 0
    for n, wanted in enumerate(V2R_ORDER):
        try:
            position = stages.index(wanted, position) + 1
        except ValueError:
            after = f" after '{V2R_ORDER[n - 1]}'" if n else ""
            problems.append(f"v2r arc lacks '{wanted}'{after}")
            break

    first_repair = next(
        (i for i, t in enumerate(turns) if t.labels.arc_stage == ArcStage.REPAIR),
        None,
    )
    if first_repair is not None and not any(
        t.labels.norm_label == NormLabel.VIOLATED for t in turns[:first_repair]
    ):
        problems.append(
            "v2r arc has no turn labelled violated before the first 'repair' "
            f"(turn {turns[first_repair].index})"
        )
    return problems


def check_arc(turns: list[LabelledTurn], dialogue_type: DialogueType) -> CheckResult:
    """Check that the turn labels tell the story the dialogue type promises.

    Args:
        turns: The labelled turns of the dialogue.
        dialogue_type: Adherence (norm kept throughout), violation (broken and never
            repaired) or v2r (violation, recognition, repair, resolution in order).

    Returns:
        The ``arc`` result; its detail says in words what is missing or wrong.
    """
    rules = {
        DialogueType.ADHERENCE: _arc_adherence,
        DialogueType.VIOLATION: _arc_violation,
        DialogueType.V2R: _arc_v2r,
    }
    problems = rules[dialogue_type](turns)
    return CheckResult(name="arc", passed=not problems, detail="; ".join(problems))


def dialogue_text(turns: list[LabelledTurn]) -> str:
    """Return the texts of the turns joined by newlines."""
    return "\n".join(t.text for t in turns)


def _shingles(text: str) -> set[str]:
    """Return the character 3-grams of the normalised text."""
    norm = _SPACE.sub(" ", unicodedata.normalize("NFC", text).casefold()).strip()
    if len(norm) <= SHINGLE:
        return {norm} if norm else set()
    return {norm[i : i + SHINGLE] for i in range(len(norm) - SHINGLE + 1)}


def _minhash(text: str) -> MinHash:
    """Return the MinHash of the text's shingles."""
    mh = MinHash(num_perm=NUM_PERM)
    mh.update_batch([s.encode("utf-8") for s in _shingles(text)])
    return mh


class DuplicateIndex:
    """Near-duplicate detection over every dialogue accepted so far.

    Character 3-grams need no tokenizer, so Chinese and Korean work as well as
    English. Safe to share between threads.

    Args:
        checks: Check settings; ``duplicate_threshold`` is the estimated Jaccard
            similarity at or above which two texts are duplicates.
    """

    def __init__(self, checks: CheckSettings) -> None:
        self.threshold = checks.duplicate_threshold
        self._lsh = MinHashLSH(threshold=self.threshold, num_perm=NUM_PERM)
        self._hashes: dict[str, MinHash] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Return the number of texts in the index."""
        with self._lock:
            return len(self._hashes)

    def _insert(self, key: str, mh: MinHash) -> None:
        """Insert ``mh`` under ``key``, replacing an earlier entry with that key."""
        if key in self._hashes:
            self._lsh.remove(key)
        self._lsh.insert(key, mh)
        self._hashes[key] = mh

    def add(self, key: str, text: str) -> None:
        """Add ``text`` under ``key`` without checking it."""
        mh = _minhash(text)
        with self._lock:
            self._insert(key, mh)

    def check(self, key: str, text: str) -> CheckResult:
        """Check ``text`` against the index and add it when it is no duplicate.

        An earlier entry under the same ``key`` (a resumed item) is not counted as a
        duplicate; it is replaced.

        Returns:
            The ``near_duplicate`` result; on failure its detail names the key of the
            most similar earlier text.
        """
        mh = _minhash(text)
        with self._lock:
            # LSH candidates are only probable matches; keep those whose estimate
            # really reaches the threshold.
            scored = [
                (self._hashes[other].jaccard(mh), other)
                for other in self._lsh.query(mh)
                if other != key
            ]
            scored = [(s, other) for s, other in scored if s >= self.threshold]
            if scored:
                similarity, other = max(scored)
                return CheckResult(
                    name="near_duplicate",
                    passed=False,
                    detail=f"near duplicate of '{other}' "
                    f"(estimated Jaccard {similarity:.2f})",
                )
            self._insert(key, mh)
        return CheckResult(name="near_duplicate", passed=True)


def check_speakers(turns: list[LabelledTurn], participants: list[str]) -> CheckResult:
    """Check that the named participants, and only they, take turns.

    A speaker matches a participant when one name contains the other (casefolded),
    so "Professor Miller" matches "Miller".
    """
    names = [nfc(n).casefold() for n in participants]

    def known(speaker: str) -> bool:
        s = nfc(speaker).casefold()
        return any(s in n or n in s for n in names)

    strangers = sorted({t.speaker for t in turns if not known(t.speaker)})
    speakers = {nfc(t.speaker).casefold() for t in turns}
    problems = []
    if strangers:
        problems.append(f"speakers not in the scenario: {', '.join(strangers)}")
    if len(speakers) < 2:
        problems.append("only one speaker")
    return CheckResult(name="speakers", passed=not problems, detail="; ".join(problems))


def check_repetition(turns: list[LabelledTurn], checks: CheckSettings) -> CheckResult:
    """Reject dialogues in which whole turns repeat earlier ones.

    Small models fall into loops that restate the same sentence; a real
    conversation almost never repeats a turn of several words. Turns shorter than
    ``checks.min_repeat_letters`` letters ("OK.", "네.") may repeat.
    """
    seen: list[tuple[int, set[str]]] = []
    repeats = []
    for turn in turns:
        letters = sum(ch.isalpha() for ch in turn.text)
        grams = _shingles(turn.text)
        if letters >= checks.min_repeat_letters:
            for index, earlier in seen:
                overlap = len(grams & earlier) / max(1, len(grams | earlier))
                if overlap >= checks.duplicate_threshold:
                    repeats.append(f"turn {turn.index} repeats turn {index}")
                    break
            seen.append((turn.index, grams))
    passed = len(repeats) <= checks.max_repeated_turns
    return CheckResult(
        name="repetition", passed=passed, detail="" if passed else "; ".join(repeats)
    )


def run_rule_checks(
    turns: list[LabelledTurn],
    dialogue_type: DialogueType,
    language: Language,
    gen: GenerationSettings,
    checks: CheckSettings,
    index: DuplicateIndex | None,
    key: str,
    participants: list[str] | None = None,
) -> list[CheckResult]:
    """Run every rule check on one dialogue.

    The duplicate check runs last and only when every other check passed, so a
    rejected dialogue never enters the index.

    Args:
        turns: The labelled turns of the dialogue.
        dialogue_type: The type the dialogue was generated as.
        language: The language it must be written in.
        gen: Generation settings (turn bounds).
        checks: Check settings (thresholds).
        index: The shared duplicate index, or None to skip the duplicate check.
        key: The key the dialogue is stored under in the index (the item id).
        participants: Names of the scenario's participants; None skips the
            speaker check.

    Returns:
        The results in the order the checks ran.
    """
    results = [
        check_turn_count(turns, gen),
        check_language(turns, language, checks),
        check_arc(turns, dialogue_type),
        check_repetition(turns, checks),
    ]
    if participants is not None:
        results.append(check_speakers(turns, participants))
    if index is not None and all(r.passed for r in results):
        results.append(index.check(key, dialogue_text(turns)))
    return results


def failed_reasons(results: list[CheckResult]) -> list[str]:
    """Return ``"name: detail"`` for each failed check."""
    return [f"{r.name}: {r.detail}" for r in results if not r.passed]
