"""Every adapter that can delete a post says so, and every one that says so can: the lifecycle trusts the flag."""

import pytest

from broadcast.channels import KINDS, adapter_class
from broadcast.channels.base import Channel

# What each platform allows (shared/reference/channel-apis.md, 3.2): a post deleted through the API we use.
DELETES = {
    "mastodon": True,  # DELETE /api/v1/statuses/:id
    "bluesky": True,  # com.atproto.repo.deleteRecord
    "telegram": True,  # deleteMessage, within 48 hours
    "facebook": True,  # DELETE /{page-post-id}
    "x": True,  # DELETE /2/tweets/:id
    "slack": False,  # an incoming webhook returns no ts to delete by
    "teams": False,  # a workflow webhook has no delete
    "webhook": False,  # our receivers get a cancel event instead
    "twilio": False,  # a text cannot be recalled (DELETE removes Twilio's record only)
    "govuk-notify": False,  # nor can Notify's texts and emails
    "smtp": False,  # nor an email
}


def test_the_table_covers_every_kind():
    assert set(DELETES) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(DELETES))
def test_can_retract_matches_the_platform_and_the_code(kind):
    adapter = adapter_class(kind)
    assert adapter.can_retract is DELETES[kind]
    assert (adapter.retract is not Channel.retract) is DELETES[kind]  # a flag without a retract() would fail later
