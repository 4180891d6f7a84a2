"""Review: the timeline, exports, the report, metrics, evidence, the after-action review and live status."""
