"""How counts are said: '1 error', '2 errors', '1,204 templates' (one helper, used by every layer)."""

from __future__ import annotations

IRREGULAR = {"person": "people", "delivery": "deliveries", "entry": "entries", "copy": "copies", "reply": "replies"}


def counted(number: int, word: str, plural: str | None = None) -> str:
    """A count as people write it, with thousands separated."""
    return f"{number:,} {word if number == 1 else plural or IRREGULAR.get(word, word + 's')}"
