"""Count text the way each platform counts it, and fit a message to a limit by rule, never mid-word."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from broadcast.errors import PolicyError

URL_RE = re.compile(r"https?://[^\s<>\"]+[^\s<>\".,;:!?)\]]")
MENTION_RE = re.compile(r"(@[A-Za-z0-9_]+)@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
URL_WEIGHT = 23  # X's t.co length, and Mastodon's fixed count for any link
ELLIPSIS = "…"

Counter = Callable[[str], int]


def _graphemes(text: str) -> list[str]:
    import regex

    return regex.findall(r"\X", text)


def graphemes(text: str) -> int:
    """User-perceived characters (Bluesky counts these, up to 300)."""
    return len(_graphemes(text))


def characters(text: str) -> int:
    """Unicode code points, as Telegram, Slack and Facebook count."""
    return len(text)


def mastodon_length(text: str) -> int:
    """Mastodon: graphemes, every URL as 23, a mention counted without its domain."""
    text = MENTION_RE.sub(r"\1", text)
    urls = URL_RE.findall(text)
    return graphemes(URL_RE.sub("", text)) + URL_WEIGHT * len(urls)


# X's counting (twitter-text config v3): these code point ranges weigh 1, everything else 2,
# an emoji sequence 2 however many code points it has, a URL 23, after NFC normalisation.
_LIGHT_RANGES = ((0, 4351), (8192, 8205), (8208, 8223), (8242, 8247))


def x_weighted_length(text: str) -> int:
    """X's weighted length: 280 is the limit."""
    import regex

    text = unicodedata.normalize("NFC", text)
    urls = URL_RE.findall(text)
    total = URL_WEIGHT * len(urls)
    for cluster in _graphemes(URL_RE.sub("", text)):
        if regex.search(r"\p{Extended_Pictographic}|\p{Regional_Indicator}", cluster):
            total += 2
            continue
        for char in cluster:
            point = ord(char)
            total += 1 if any(low <= point <= high for low, high in _LIGHT_RANGES) else 2
    return total


@dataclass(frozen=True)
class Fitted:
    text: str
    count: int
    limit: int
    shortened: bool


def fit(
    parts: Sequence[tuple[str, bool]], *, headline: str, link: str, count: Counter, limit: int, channel: str,
    unit: str = "characters",
) -> Fitted:
    """Fit text to `limit` as `count` measures it.

    The rule: the full text if it fits; else drop optional sentences, last first; else keep the longest run of
    whole sentences that fits with "… <link>" after it; else the headline and the link; else refuse. Text is
    never cut inside a sentence, so a warning cannot lose the word that changes its meaning.
    """
    from broadcast.prepare.templates import tidy

    full = tidy("".join(text for text, _ in parts))
    if count(full) <= limit:
        return Fitted(full, count(full), limit, False)
    kept = list(parts)
    for index in reversed(range(len(kept))):
        if kept[index][1]:
            del kept[index]
            text = tidy("".join(t for t, _ in kept))
            if count(text) <= limit:
                return Fitted(text, count(text), limit, True)
    essential = tidy("".join(t for t, _ in kept)).replace(link, "").strip()
    candidates = [f"{prefix} {ELLIPSIS} {link}".strip() for prefix in _sentence_cuts(essential)]
    candidates.append(f"{headline.strip()} {link}".strip())
    for candidate in candidates:
        if count(candidate) <= limit:
            return Fitted(candidate, count(candidate), limit, True)
    raise PolicyError(
        f"{channel}: even the headline and the link do not fit in {limit} {unit}; nothing was sent",
        hint="shorten the template's headline, or leave this channel out with --only",
    )


def _sentence_cuts(text: str) -> list[str]:
    """Prefixes of the text that end at a sentence end, longest first."""
    ends = [m.end() for m in re.finditer(r"[.!?](?=\s|$)", text)]
    return [text[:end].strip() for end in reversed(ends) if text[:end].strip()]
