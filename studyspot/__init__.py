"""Whole-platform entry points: the `studyspot` command and the one-machine demo."""
