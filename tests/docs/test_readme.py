"""The README is part of the product: its quick start and configuration table must stay true."""

from __future__ import annotations

from pathlib import Path

from studyspot.settings_doc import environment_variables, markdown_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_starts_with_the_two_commands() -> None:
    text = README.read_text()
    quick_start = text[text.index("## Quick start") :][:600]
    assert "make demo" in quick_start and "make test" in quick_start


def test_readme_lists_every_cloud_environment_variable_as_the_code_defines_it() -> None:
    text = README.read_text()
    assert markdown_table() in text, "regenerate with: python -m studyspot.settings_doc"
    assert all(row[3] for row in environment_variables()), "every setting needs a description"
