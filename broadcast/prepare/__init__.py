"""Prepare: templates and their variables, sign-off, lint, runbooks, recipient lists, channel checks."""
