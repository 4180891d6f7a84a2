"""Two list channels sending at once share one progress line on a terminal instead of overwriting each other."""

import re

from broadcast.commands.lists import ProgressBar
from broadcast.send.bulk import Progress


class Terminal(ProgressBar):
    def _terminal(self) -> bool:
        return True


def test_two_lists_share_one_live_line_and_each_finishes_on_its_own_line(capsys):
    bar = Terminal()
    notify, twilio = Progress("sms-residents", 2413), Progress("sms-twilio", 2413)
    for step in range(1, 4):
        notify.done, twilio.done = step * 100, step * 80
        bar(notify)
        bar(twilio)
    drawn = capsys.readouterr().err.split("\r")[-1]  # the line after the last redraw
    assert re.fullmatch(r"sms-residents 300/2,413 \S+ left \| sms-twilio 240/2,413 \S+ left", drawn), drawn
    notify.done = notify.total
    bar(notify)
    out = capsys.readouterr().err
    assert "sms-residents: 2,413/2,413 [####################]" in out and "done\n" in out  # kept on its own line
    assert re.fullmatch(r"sms-twilio: 240/2,413 \[#*\.*\] \S+/s \S+ left", out.split("\n")[-1]), out
    twilio.done = twilio.total
    bar(twilio)
    assert capsys.readouterr().err.endswith("done\n") and not bar.drawn
