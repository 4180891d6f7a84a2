"""Warn and inform, then recover: plan and issue, fan out with retries, lists, drafts, updates and corrections."""
