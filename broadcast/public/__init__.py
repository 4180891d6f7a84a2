"""The public outputs, all derived from the log: the fallback page, Atom and RSS feeds, CAP files, publishing."""
