import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broadcast.channels.textfit import ELLIPSIS, fit, graphemes, mastodon_length, x_weighted_length
from broadcast.errors import PolicyError
from broadcast.prepare.templates import tidy

LINK = "https://alerts.council.example"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", 5),
        ("e\u0301", 1),  # e + combining acute: one grapheme
        ("👨‍👩‍👧", 1),  # a family joined by zero-width joiners
        ("🏴󠁧󠁢󠁷󠁬󠁳󠁿", 1),  # the flag of Wales: a tag sequence
        ("Ŵ ŷ", 3),
    ],
)
def test_graphemes(text, expected):
    assert graphemes(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a" * 280, 280),
        ("日本語", 6),  # CJK weighs 2
        ("👋🏽", 2),  # an emoji with a skin tone: one emoji, 2
        (f"More: {LINK}/a/very/long/path/that/goes/on/and/on", 6 + 23),  # any URL is 23
        ("café", 4),  # NFC: é is one code point
        ("cafe\u0301", 4),
    ],
)
def test_x_weighted_length(text, expected):
    assert x_weighted_length(text) == expected


def test_mastodon_counts_links_as_23_and_mentions_without_domain():
    assert mastodon_length(f"see {LINK}/{'x' * 100}") == 4 + 23
    assert mastodon_length("hi @council@social.example") == len("hi @council")


PARTS = [("Ysgol Bro Lliw is closed today. ", False), ("Pupils should stay at home. ", True),
         ("Buses are not running on the A4069. ", False), ("We will update by 3pm. ", False), (LINK, False)]


def test_full_text_when_it_fits():
    fitted = fit(PARTS, headline="Ysgol Bro Lliw closed", link=LINK, count=len, limit=500, channel="c")
    assert not fitted.shortened and "Pupils should stay at home." in fitted.text


def test_optional_sentences_go_first():
    fitted = fit(PARTS, headline="h", link=LINK, count=len, limit=130, channel="c")
    assert fitted.shortened and "Pupils" not in fitted.text and "We will update by 3pm." in fitted.text
    assert fitted.text.endswith(LINK)


def test_then_whole_sentences_with_the_link():
    fitted = fit(PARTS, headline="h", link=LINK, count=len, limit=110, channel="c")
    assert fitted.text == f"Ysgol Bro Lliw is closed today. Buses are not running on the A4069. {ELLIPSIS} {LINK}"


def test_then_the_headline_and_link_then_refusal():
    fitted = fit(PARTS, headline="Ysgol Bro Lliw closed", link=LINK, count=len, limit=55, channel="c")
    assert fitted.text == f"Ysgol Bro Lliw closed {LINK}"
    refused = "even the headline and the link do not fit in 40 characters; nothing was sent"
    with pytest.raises(PolicyError, match=refused):
        fit(PARTS, headline="Ysgol Bro Lliw closed", link=LINK, count=len, limit=40, channel="c")


words = st.text(alphabet=st.sampled_from(list("abcdefghij ŵŷ日本👋🏽é\u0301")), min_size=1, max_size=40)
sentences = st.builds(lambda w: w.strip() + ".", words).filter(lambda s: len(s) > 1)


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.tuples(sentences, st.booleans()), min_size=1, max_size=8),
       limit=st.integers(min_value=40, max_value=300),
       counter=st.sampled_from([graphemes, x_weighted_length, mastodon_length, len]))
def test_fitted_text_is_within_the_limit_and_never_cut_inside_a_sentence(parts, limit, counter):
    parts = [(text + " ", optional) for text, optional in parts] + [(LINK, False)]
    try:
        fitted = fit(parts, headline="Council warning", link=LINK, count=counter, limit=limit, channel="c")
    except PolicyError:
        assert counter(f"Council warning {LINK}") > limit
        return
    assert counter(fitted.text) == fitted.count <= limit
    assert fitted.text.endswith(LINK)
    body = fitted.text.removesuffix(LINK).removesuffix(f"{ELLIPSIS} ").strip()
    if body and body != "Council warning":
        # Every sentence kept is whole: the kept text is made of the original sentences.
        originals = {tidy(text) for text, _ in parts}
        kept = [s.strip() + "." for s in body.split(".") if s.strip()]
        assert all(any(k.strip() == o for o in originals) for k in kept)
