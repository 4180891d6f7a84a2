"""SMS segments counted as phone networks count them (GSM 03.38), on known cases."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broadcast.channels.sms import GSM_BASIC, cost_line, segments


@pytest.mark.parametrize(("text", "encoding", "units", "parts"), [
    ("a" * 160, "GSM-7", 160, 1),  # pure GSM: 160 in one
    ("a" * 161, "GSM-7", 161, 2),  # then 153 a part
    ("a" * 306, "GSM-7", 306, 2),
    ("a" * 307, "GSM-7", 307, 3),
    ("€" * 80, "GSM-7", 160, 1),  # an extended character counts two
    ("a" * 159 + "€", "GSM-7", 161, 2),
    ("a" * 152 + "{" + "a" * 7, "GSM-7", 161, 2),
    ("Snow: schools closed 👍", "UCS-2", 23, 1),  # one emoji switches the whole text, and counts two units
    ("a" * 69 + "👍", "UCS-2", 71, 2),
    ("a" * 70, "GSM-7", 70, 1),
    ("ŵ" * 70, "UCS-2", 70, 1),  # Welsh circumflexes are not in GSM-7
    ("ŵ" * 71, "UCS-2", 71, 2),
    ("ŵ" * 134, "UCS-2", 134, 2),
    ("ŵ" * 135, "UCS-2", 135, 3),
    ("", "GSM-7", 0, 1),
])
def test_known_cases(text, encoding, units, parts):
    counted = segments(text)
    assert (counted.encoding, counted.units, counted.parts) == (encoding, units, parts)


def test_an_escaped_character_is_never_split_across_parts():
    # 152 septets then '[' (two): the pair cannot start at 153, so the second part begins with it.
    assert segments("a" * 152 + "[" + "a" * 152).parts == 3
    assert segments("a" * 151 + "[" + "a" * 153).parts == 2


def test_the_cost_line_reads_as_the_issue_asks():
    assert cost_line(12410, 2, None) == "12,410 recipients x 2 segments = 24,820 segments"
    assert cost_line(1, 1, 0.0197) == "1 recipient x 1 segment = 1 segment, about £0.02 at £0.0197 a segment"


@given(st.text(alphabet=sorted(GSM_BASIC), max_size=1000))
def test_pure_gsm_text_follows_160_and_153(text):
    count = segments(text)
    assert count.encoding == "GSM-7"
    assert count.parts == (1 if len(text) <= 160 else -(-len(text) // 153))
