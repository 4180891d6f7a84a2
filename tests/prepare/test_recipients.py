"""Recipient lists: streamed, checked row by row, targeted, opt-outs honoured, never kept in clear."""

import os
import stat

import pytest
from listkit import RESIDENTS

from broadcast.errors import ConfigError
from broadcast.prepare.recipients import (
    KEY_ENV,
    ListReport,
    RecipientKey,
    mask_email,
    mask_phone,
    normalise_phone,
    read_opt_outs,
    select,
)


@pytest.fixture
def lists(tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    (tmp_path / "lists").mkdir()
    path = tmp_path / "lists" / "residents.csv"
    path.write_text(RESIDENTS, encoding="utf-8")
    return tmp_path, path


def chosen(path, root, **options):
    report = ListReport(path)
    key = RecipientKey.for_workspace(root)
    people = list(select(path, report, key=key, languages=("en-GB", "cy-GB"), default_language="en-GB",
                         **{"media": ("sms", "email"), **options}))
    return people, report


@pytest.mark.parametrize(("raw", "e164"), [
    ("07700 900123", "+447700900123"), ("+44 7700 900123", "+447700900123"), ("0044 7911 123456", "+447911123456"),
    ("(07911) 123-456", "+447911123456"), ("7911123456", "+447911123456"), ("+353 86 123 4567", "+353861234567"),
])
def test_numbers_become_e164(raw, e164):
    assert normalise_phone(raw) == e164


@pytest.mark.parametrize(("raw", "why"), [("not a number", "not a phone number"), ("01632 960001", "not a valid"),
                                          ("020 7946 0000", "not a mobile"), ("07700 90012", "not a valid")])
def test_bad_numbers_say_why_without_echoing_them(raw, why):
    with pytest.raises(ValueError, match=why) as caught:
        normalise_phone(raw)
    assert raw not in str(caught.value)


def test_bad_rows_are_reported_with_line_numbers_and_the_good_rows_still_go(lists):
    root, path = lists
    people, report = chosen(path, root)
    assert report.rows == 8 and report.skipped == 2  # lines 6 and 8 have nothing usable
    problems = {(p.line, p.skipped): p.reason for p in report.problems}
    assert problems[6, True] == "phone is not a phone number"
    assert problems[8, True].startswith("email is not a valid address")
    assert "the row's other contact is still used" in problems[9, False]  # a landline, but the email is fine
    assert [(p.medium, p.masked, p.line) for p in people] == [
        ("sms", "+44 7*** ***001", 2), ("email", "a***@example.org", 2), ("sms", "+44 7*** ***002", 3),
        ("sms", "+44 7*** ***003", 4), ("email", "c***@example.org", 4), ("email", "d***@example.org", 5),
        ("email", "g***@example.org", 9)]
    assert report.duplicates == 1  # line 7 is Ann's number again: merged
    # Counted as people count them: rows chosen, and the messages apart (two rows have a phone and an email).
    assert report.summary().startswith("5 of 8 rows selected (7 messages: some rows have both a phone number and an "
                                       "email)")


def test_each_person_gets_the_language_they_asked_for(lists):
    root, path = lists
    people, _ = chosen(path, root, media=("sms",))
    assert [p.language for p in people] == ["en-GB", "cy-GB", "cy-GB"]  # en, cy, Cymraeg
    people, report = chosen(path, root, media=("email",))
    assert people[2].language == "en-GB"  # Dai asked for nothing: the first language


def test_to_selects_by_group_or_area_tag_and_a_group_holds_its_subgroups(lists):
    root, path = lists
    people, report = chosen(path, root, media=("sms",), to=("parents:hillside-primary",))
    assert [p.masked for p in people] == ["+44 7*** ***001"]
    assert report.matched == {"parents:hillside-primary"} and report.not_targeted == 2
    people, _ = chosen(path, root, media=("sms",), to=("parents",))
    assert [p.masked for p in people] == ["+44 7*** ***001", "+44 7*** ***002"]
    people, _ = chosen(path, root, media=("sms",), to=("valley",))
    assert [p.masked for p in people] == ["+44 7*** ***003"]


def test_opt_out_is_honoured(lists):
    root, path = lists
    (root / "lists" / "opt-out.csv").write_text("phone,email\n+447700900002,\n,ANN@example.org\n", encoding="utf-8")
    key = RecipientKey.for_workspace(root)
    opt_outs, _ = read_opt_outs(root, key)
    people, report = chosen(path, root, opt_outs=opt_outs)
    assert report.opted_out == 2
    assert "+44 7*** ***002" not in [p.masked for p in people] and "a***@example.org" not in [p.masked for p in people]
    assert "+44 7*** ***001" in [p.masked for p in people]  # Ann opted out of email only


def test_the_key_file_is_made_once_private_and_keys_differ_by_workspace(lists, tmp_path):
    root, _ = lists
    first = RecipientKey.for_workspace(root)
    path = root / ".broadcast" / "recipient.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert RecipientKey.for_workspace(root).digest("sms", "+447700900001") == first.digest("sms", "+447700900001")
    other = tmp_path / "other"
    other.mkdir()
    assert RecipientKey.for_workspace(other).digest("sms", "+447700900001") != first.digest("sms", "+447700900001")
    assert "7700900001" not in first.digest("sms", "+447700900001")
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="readable by other users"):
        RecipientKey.for_workspace(root)


def test_the_key_can_come_from_the_environment(lists, monkeypatch):
    root, _ = lists
    monkeypatch.setenv(KEY_ENV, "k" * 40)
    assert RecipientKey.for_workspace(root).fingerprint() == RecipientKey(b"k" * 40).fingerprint()
    assert not (root / ".broadcast").exists()
    monkeypatch.setenv(KEY_ENV, "short")
    with pytest.raises(ConfigError, match="too short"):
        RecipientKey.for_workspace(root)


def test_masks():
    assert mask_phone("+447700900123") == "+44 7*** ***123"
    assert mask_phone("+12025550143") == "+1 2*** ***143"
    assert mask_email("ann.other@example.org") == "a***@example.org"


def test_a_list_without_phone_or_email_columns_is_refused_with_a_guess(lists):
    root, path = lists
    path.write_text("mobile,name\n07700900001,Ann\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="phone and/or email") as caught:
        chosen(path, root)
    assert "did you mean 'phone' for 'mobile'" in caught.value.hint


def test_a_long_list_is_streamed_not_loaded(lists):
    import tracemalloc

    root, path = lists
    path.write_text("phone\n" + "".join(f"07400 {100000 + n:06d}\n" for n in range(10000)), encoding="utf-8")
    key = RecipientKey.for_workspace(root)
    tracemalloc.start()
    report = ListReport(path)
    count = sum(1 for _ in select(path, report, key=key, media=("sms",), languages=("en-GB",),
                                  default_language="en-GB"))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == 10000 and peak < 3_000_000  # far less than 10,000 recipients held at once


def test_a_uk_mobile_written_the_usual_ways_normalises_as_phonenumbers_does():
    """The send's fast path for a checked list gives exactly what phonenumbers gives, and leaves the rest to it."""
    import phonenumbers
    from hypothesis import given
    from hypothesis import strategies as st

    from broadcast.prepare.recipients import normalise_phone

    def slow(raw):
        return phonenumbers.format_number(phonenumbers.parse(raw, "GB"), phonenumbers.PhoneNumberFormat.E164)

    @given(st.text("0123456789", min_size=9, max_size=9), st.sampled_from(["07{}", "+447{}", "00447{}", "+44 7{}",
                                                                           " 07{} ", "07{}"]),
           st.sampled_from([None, 3, 6]), st.sampled_from([" ", "-"]))
    def same(digits, shape, gap, separator):
        raw = shape.format(digits)
        if gap is not None:
            at = len(raw) - 9 + gap
            raw = raw[:at] + separator + raw[at:]
        assert normalise_phone(raw, check=False) == slow(raw)

    same()
    for other in ("+44 (0)7700 900001", "01632 960001", "+353 85 123 4567", "7700900001"):
        assert normalise_phone(other, check=False) == slow(other)  # not the fast path's shape: phonenumbers decides


def test_a_checked_uk_mobile_is_accepted_or_refused_exactly_as_phonenumbers_decides():
    """A list's numbers are checked twice a warning; the usual UK shapes are checked against phonenumbers' metadata
    without its parse. Every 07xxx prefix (with a random rest, and the drama range) gets the same answer as
    phonenumbers' parse and number_type give; a refusal still comes from phonenumbers, with its reason."""
    import random

    import phonenumbers
    from phonenumbers import PhoneNumberType

    from broadcast.prepare.recipients import DRAMA_MOBILES, _uk_mobile, normalise_phone

    textable = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE, PhoneNumberType.PAGER)

    def reference(raw):
        number = phonenumbers.parse(raw, "GB")
        kind = (PhoneNumberType.MOBILE if number.national_number in DRAMA_MOBILES
                else phonenumbers.number_type(number))
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) if kind in textable else None

    def ours(raw):
        try:
            return normalise_phone(raw)
        except ValueError as exc:
            assert str(exc).startswith(("phone is not a valid number", "phone is not a mobile number"))
            return None

    rng = random.Random(17)
    numbers = [f"0{prefix} {rng.randrange(100_000):05d}" for prefix in range(70_000, 80_000)]
    numbers += ["07700 900123", "+44 7700 900999", "07700 901000", "07624 123456", "07911 123456"]
    answers = [(raw, ours(raw), reference(raw)) for raw in numbers]
    assert [a for a in answers if a[1] != a[2]] == []
    assert sum(_uk_mobile(raw.replace(" ", "")[1:]) for raw in numbers[:10_000]) > 5000  # the fast answer, used
    assert sum(a[1] is None for a in answers) > 1000  # and many are not
