"""Free text a clinician types -> structure concept ("Perform liver segmentation", "lt kidney", "livr").

The text and every synonym go through the same word rules (task phrasing dropped, British spelling, plurals,
ordinals, "hepatic" -> liver, "lesion"/"cancer" -> tumor), so matching is mostly a set lookup of content words.
The side (left/right/both) is read apart from the words and only ever narrows the choice: a text that says
left can never resolve to a right-sided concept, and a text without a side never picks one at random.
Typos go through difflib, at a similarity of at least MATCH_THRESHOLD.
"""
from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from .codes import Code, Terminology
from .concepts import Concept, all_concepts, color_255_for_text, generic_terminology, text_rules

MATCH_THRESHOLD = 0.85  # below this a text is "unmatched" and gets generic codes
TYPO_CUTOFF = 0.8  # a single word must be at least this close to a known word to be corrected
PARTIAL_MATCH_SCORE = 0.9  # a known structure plus words that add nothing we can code ("liver of this patient")
_MIN_TYPO_LENGTH = 4  # shorter words (l1, rt, lv) are never "corrected" into other words
_VERTEBRA_LEVELS = frozenset([f"c{i}" for i in range(1, 8)] + [f"t{i}" for i in range(1, 13)]
                             + [f"l{i}" for i in range(1, 6)] + [f"s{i}" for i in range(1, 6)])
_LEVEL_WITH_GAP = re.compile(r"\b([ctls])[\s\-]+(\d{1,2})\b")
_WORD = re.compile(r"[a-z0-9]+")
_ORIGINAL_WORD = re.compile(r"[A-Za-z0-9]+")


@dataclass(frozen=True)
class ParsedText:
    """What a text says to the matcher: the side it names and its canonical content words, in order."""

    side: str | None  # "left", "right", "both" or None
    tokens: tuple[str, ...]
    cleaned: str  # the user's own words without leading/trailing task phrasing, for naming unmatched text

    @property
    def normalized(self) -> str:
        return " ".join(((self.side,) if self.side else ()) + self.tokens)


@dataclass(frozen=True)
class Match:
    """Result of `resolve`: the concept (None when unmatched) and everything a segment needs from it."""

    concept: Concept | None
    score: float  # 1.0 exact, lower for typos/partial/fuzzy matches; below MATCH_THRESHOLD when unmatched
    text: str  # what the user typed
    normalized: str  # canonical form the matcher looked up, e.g. "left kidney"
    side: str | None = None
    cleaned: str = ""
    method: str = "none"  # exact, typo, partial, fuzzy or none

    @property
    def matched(self) -> bool:
        return self.concept is not None

    @property
    def display_name(self) -> str:
        """Canonical name when matched (keeping a side the concept itself has not); the user's words otherwise."""
        if self.concept is None:
            return self.cleaned or (self.text or "").strip() or "segment"
        name = self.concept.display_name
        if self.concept.laterality is None and self.side in ("left", "right") and self.side not in name.split():
            return f"{self.side} {name}"
        return name

    @property
    def terminology(self) -> Terminology:
        return self.concept.terminology if self.concept else generic_terminology(self.text)

    @property
    def anatomic_region(self) -> Code | None:
        return self.concept.anatomic_region if self.concept else None

    @property
    def color_255(self) -> tuple[int, int, int]:
        return self.concept.color if self.concept else color_255_for_text(self.display_name)

    @property
    def color(self) -> tuple[float, float, float]:
        """RGB in 0..1, the convention of SegmentOutput.color."""
        return tuple(c / 255.0 for c in self.color_255)


class _Rules:
    """The word rules of structures.json, compiled once."""

    def __init__(self, raw: dict):
        self.remove = [re.compile(p) for p in raw["remove_patterns"]]
        self.british = raw["british_to_us"]
        self.numbers = raw["number_words"]
        self.irregular = raw["irregular_singulars"]
        self.protected = tuple(raw["protected_endings"])
        self.adjectives = raw["adjective_to_noun"]
        self.finding = frozenset(raw["finding_words"]["words"])
        self.finding_canonical = raw["finding_words"]["canonical"]
        self.left = frozenset(raw["left_markers"])
        self.right = frozenset(raw["right_markers"])
        self.both = frozenset(raw["both_markers"])
        self.task = frozenset(raw["task_words"])
        self.blocking = frozenset(raw["blocking_words"])

    def singular(self, word: str) -> str:
        if word in self.irregular:
            return self.irregular[word]
        if len(word) <= 3 or any(ch.isdigit() for ch in word) or word.endswith(self.protected):
            return word
        if word.endswith("ies") and len(word) > 4:
            return word[:-3] + "y"
        return word.removesuffix("s")

    def canonical(self, word: str) -> str | None:
        """One word in canonical form, or None for task phrasing ("segment", "the", "ct")."""
        if word in self.task:
            return None
        word = self.numbers.get(self.british.get(word, word), self.british.get(word, word))
        if word in self.finding:
            return self.finding_canonical
        word = self.singular(word)
        if word in self.task:
            return None
        word = self.adjectives.get(self.british.get(word, word), self.british.get(word, word))
        return self.finding_canonical if word in self.finding else word


@lru_cache(maxsize=1)
def _rules() -> _Rules:
    return _Rules(text_rules())


def _ascii_lower(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()


def _join_level(match: re.Match) -> str:
    joined = match.group(1) + match.group(2)
    return joined if joined in _VERTEBRA_LEVELS else match.group(0)


def _cleaned(text: str, rules: _Rules) -> str:
    """The user's words with leading/trailing task phrasing removed ("Please segment the liver cyst." -> "liver cyst")."""
    spans = [m for m in _ORIGINAL_WORD.finditer(text or "") if _ascii_lower(m.group(0)) not in rules.task]
    if not spans:
        return ""
    return text[spans[0].start():spans[-1].end()].strip()


def parse(text: str) -> ParsedText:
    """Split a text into its side and canonical content words, the form both queries and synonyms are indexed in."""
    rules = _rules()
    lowered = _ascii_lower(text)
    for pattern in rules.remove:
        lowered = pattern.sub(" ", lowered)
    lowered = _LEVEL_WITH_GAP.sub(_join_level, lowered)
    sides: set[str] = set()
    tokens: list[str] = []
    for word in _WORD.findall(lowered):
        if word in rules.left:
            sides.add("left")
        elif word in rules.right:
            sides.add("right")
        elif word in rules.both:
            sides.add("both")
        else:
            token = rules.canonical(word)
            if token is not None:
                tokens.append(token)
    if "both" in sides or {"left", "right"} <= sides:
        side = "both"
    else:
        side = next(iter(sides), None)
    return ParsedText(side, tuple(dict.fromkeys(tokens)), _cleaned(text, rules))


@dataclass(frozen=True)
class _Index:
    by_key: dict[frozenset, tuple[Concept, ...]]  # content-word set -> concepts named by it (sides apart)
    by_token: dict[str, tuple[frozenset, ...]]
    phrases: dict[str, frozenset]  # content words in typed order -> key, for fuzzy matching
    phrase_list: tuple[str, ...]
    vocabulary: tuple[str, ...]


def phrases_of(concept: Concept) -> tuple[str, ...]:
    """Every text that should resolve to this concept: name, synonyms and raw label names."""
    raw = (name.replace("_", " ") for name in concept.raw_names)
    return tuple(dict.fromkeys((concept.name, *concept.synonyms, *raw)))


def side_fits(side: str | None, concept: Concept) -> bool:
    """A phrase's side agrees with the concept's laterality (no side fits anything)."""
    if side is None:
        return True
    if side == "both":
        return concept.laterality is None
    return concept.laterality == side


@lru_cache(maxsize=1)
def _index() -> _Index:
    by_key: dict[frozenset, list[Concept]] = {}
    phrases: dict[str, frozenset] = {}
    for concept in all_concepts():
        for phrase in phrases_of(concept):
            parsed = parse(phrase)
            if not parsed.tokens or not side_fits(parsed.side, concept):
                continue
            key = frozenset(parsed.tokens)
            bucket = by_key.setdefault(key, [])
            if concept not in bucket:
                bucket.append(concept)
            phrases.setdefault(" ".join(parsed.tokens), key)
    by_token: dict[str, list[frozenset]] = {}
    for key in by_key:
        for token in key:
            by_token.setdefault(token, []).append(key)
    vocabulary = tuple(sorted(by_token))
    return _Index({k: tuple(v) for k, v in by_key.items()}, {k: tuple(v) for k, v in by_token.items()},
                  phrases, tuple(phrases), vocabulary)


def _choose(candidates: tuple[Concept, ...], side: str | None) -> Concept | None:
    """Pick among concepts sharing the same words by side; never the opposite side, never a coin toss."""
    if side in ("left", "right"):
        same = [c for c in candidates if c.laterality == side]
        if same:
            return same[0]
        return next((c for c in candidates if c.laterality is None), None)
    sideless = [c for c in candidates if c.laterality is None]
    if sideless:
        return sideless[0]
    if side is None and len(candidates) == 1:
        return candidates[0]  # a structure that exists on one side only ("middle lobe", "left atrial appendage")
    return None


def _exact(tokens: tuple[str, ...], side: str | None, index: _Index) -> Concept | None:
    candidates = index.by_key.get(frozenset(tokens))
    return _choose(candidates, side) if candidates else None


def _correct_typos(tokens: tuple[str, ...], index: _Index) -> tuple[tuple[str, ...], float]:
    """Replace unknown words by the closest known word; the score is the mean word similarity."""
    known = set(index.by_token)
    corrected, similarity = [], []
    for token in tokens:
        if token in known or len(token) < _MIN_TYPO_LENGTH or any(ch.isdigit() for ch in token):
            corrected.append(token)
            similarity.append(1.0)
            continue
        close = difflib.get_close_matches(token, index.vocabulary, n=1, cutoff=TYPO_CUTOFF)
        corrected.append(close[0] if close else token)
        similarity.append(difflib.SequenceMatcher(None, token, close[0]).ratio() if close else 1.0)
    return tuple(dict.fromkeys(corrected)), sum(similarity) / len(similarity)


def _blocks(token: str, index: _Index) -> bool:
    """A left-over word that changes the meaning: a finding, a sub-part, a number, or another structure."""
    return _changes_meaning(token) or frozenset([token]) in index.by_key


def _partial(tokens: tuple[str, ...], side: str | None, index: _Index) -> Concept | None:
    """The largest known phrase inside the text, if the remaining words add nothing codable."""
    query = frozenset(tokens)
    inside = {key for token in tokens for key in index.by_token.get(token, ()) if key <= query}
    if not inside:
        return None
    largest = max(len(key) for key in inside)
    best = [key for key in inside if len(key) == largest]
    if len(best) != 1 or any(_blocks(token, index) for token in query - best[0]):
        return None
    return _choose(index.by_key[best[0]], side)


def _fuzzy(tokens: tuple[str, ...], side: str | None, index: _Index) -> tuple[Concept | None, float]:
    """Whole-phrase similarity ("gall bladder" ~ "gallbladder"); numbers and findings must agree exactly."""
    query = " ".join(tokens)
    best_rejected = 0.0
    for phrase in difflib.get_close_matches(query, index.phrase_list, n=5, cutoff=MATCH_THRESHOLD - 0.15):
        key = index.phrases[phrase]
        if any(_changes_meaning(token) for token in frozenset(tokens) ^ key):
            continue  # a different number, vertebra level, finding or sub-part
        ratio = difflib.SequenceMatcher(None, query, phrase).ratio()
        concept = _choose(index.by_key[key], side) if ratio >= MATCH_THRESHOLD else None
        if concept is not None:
            return concept, ratio
        best_rejected = max(best_rejected, ratio)
    return None, best_rejected


def _changes_meaning(token: str) -> bool:
    return token in _rules().blocking or any(ch.isdigit() for ch in token) or token in _VERTEBRA_LEVELS


def resolve(text: str) -> Match:
    """Map free text to a concept; concept None (score < MATCH_THRESHOLD) when nothing fits safely."""
    parsed = parse(text or "")
    fields = {"text": text, "normalized": parsed.normalized, "side": parsed.side, "cleaned": parsed.cleaned}
    if not parsed.tokens:
        return Match(None, 0.0, **fields)
    index = _index()
    concept = _exact(parsed.tokens, parsed.side, index)
    if concept is not None:
        return Match(concept, 1.0, method="exact", **fields)
    corrected, similarity = _correct_typos(parsed.tokens, index)
    if corrected != parsed.tokens and similarity >= MATCH_THRESHOLD:
        concept = _exact(corrected, parsed.side, index)
        if concept is not None:
            return Match(concept, similarity, method="typo", **fields)
    if PARTIAL_MATCH_SCORE * similarity >= MATCH_THRESHOLD:
        concept = _partial(corrected, parsed.side, index)
        if concept is not None:
            return Match(concept, PARTIAL_MATCH_SCORE * similarity, method="partial", **fields)
    concept, ratio = _fuzzy(parsed.tokens, parsed.side, index)
    if concept is not None:
        return Match(concept, ratio, method="fuzzy", **fields)
    return Match(None, min(ratio, MATCH_THRESHOLD - 0.01), **fields)


def knows_any_word(text: str) -> bool:
    """True when ``text`` matches a concept or holds at least one word of the vocabulary (e.g. 'cyst')."""
    if resolve(text).matched:
        return True
    vocabulary = set(_index().vocabulary)
    return any(token in vocabulary for token in parse(text or "").tokens)
