"""Channel adapters, one module per platform, found through a registry of lazy imports."""

from __future__ import annotations

# Which rendered variant each kind of channel posts, before fitting to its limit.
VARIANT_BY_KIND = {
    "webhook": "body", "mastodon": "short", "bluesky": "short", "telegram": "body", "slack": "body",
    "teams": "body", "facebook": "body", "x": "short", "twilio": "short", "govuk-notify": "short",
    "smtp": "body", "page": "body",
}
