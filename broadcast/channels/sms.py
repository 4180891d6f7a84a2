"""SMS segments: how many parts a text is sent as, the way phone networks count them (GSM 03.38)."""

from __future__ import annotations

from dataclasses import dataclass

# The GSM 03.38 default alphabet (one septet each), without the escape character itself.
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: sent as escape + character, so each counts two.
GSM_EXTENDED = frozenset("^{}\\[~]|€\f")

GSM_SINGLE, GSM_PART = 160, 153  # a concatenated part gives 7 septets to its header
UCS2_SINGLE, UCS2_PART = 70, 67


@dataclass(frozen=True)
class Segments:
    """How a text goes out: its encoding, its length in that encoding's units, and the number of parts."""

    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    parts: int

    def describe(self) -> str:
        unit = "characters" if self.encoding == "GSM-7" else "UCS-2 units"
        return f"{self.parts} segment{'s' if self.parts != 1 else ''} ({self.encoding}, {self.units} {unit})"


def is_gsm(text: str) -> bool:
    """True when every character is in the GSM-7 alphabet or its extension."""
    return all(char in GSM_BASIC or char in GSM_EXTENDED for char in text)


def segments(text: str) -> Segments:
    """Count the parts as networks do: one non-GSM character sends the whole text as UCS-2.

    A part never splits an escaped GSM character or a UTF-16 surrogate pair, so a text just over a boundary
    can need one part more than its length divided by 153 (or 67).
    """
    if is_gsm(text):
        widths = [2 if char in GSM_EXTENDED else 1 for char in text]
        return Segments("GSM-7", sum(widths), _parts(widths, GSM_SINGLE, GSM_PART))
    widths = [2 if ord(char) > 0xFFFF else 1 for char in text]
    return Segments("UCS-2", sum(widths), _parts(widths, UCS2_SINGLE, UCS2_PART))


def count_segments(text: str) -> int:
    """The number of parts: the counter `textfit.fit` uses to keep a message within N segments."""
    return segments(text).parts


def _parts(widths: list[int], single: int, part: int) -> int:
    total = sum(widths)
    if total == 0:
        return 1  # an empty text is still one message
    if total <= single:
        return 1
    parts, used = 1, 0
    for width in widths:
        if used + width > part:
            parts, used = parts + 1, 0
        used += width
    return parts


def cost_line(recipients: int, parts: int, price: float | None, currency: str = "£") -> str:
    """'12,410 recipients x 2 segments = 24,820 segments', with the estimated cost when a price is set."""
    total = recipients * parts
    line = (f"{recipients:,} recipient{'s' if recipients != 1 else ''} x {parts} segment{'s' if parts != 1 else ''}"
            f" = {total:,} segment{'s' if total != 1 else ''}")
    if price is not None:
        line += f", about {currency}{total * price:,.2f} at {currency}{price:g} a segment"
    return line
