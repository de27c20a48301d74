"""Fixtures of the training-stack tests: the tiny recipe is registered for every test."""

from __future__ import annotations

import pytest

from _tiny import register_tiny


@pytest.fixture(autouse=True)
def tiny_recipe():
    return register_tiny()


@pytest.fixture
def manifest(tmp_path):
    path = tmp_path / "manifest.jsonl"
    path.write_text('{"path": "a.flac", "split": "train"}\n')
    return path
