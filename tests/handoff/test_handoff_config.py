"""A broken ``flows/handoff.yml`` stops start-up with a ``FlowError`` naming the file, never
a bare exception from deep inside the loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings
from bot.dialog.flows import FlowError
from bot.handoff.config import load_handoff_config


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe not utf-8",
        b"- just\n- a list\n",
        b"departments: [general]\n",
        b"departments:\n  billing: [1, 2]\n",
        b"departments:\n  billing:\n    hours: Mo-Fr 09:00-18:00\n    timezone: Nowhere/City\n",
        b"canned: 12\n",
        b"answer_timeout_seconds: soon\n",
        b"answer_timeout_seconds: " + b"9" * 400 + b"\n",
        b"queued_ack_seconds: [1]\n",
    ],
)
def test_a_broken_handoff_file_is_refused_with_its_name(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "handoff.yml"
    path.write_bytes(content)
    with pytest.raises(FlowError) as refused:
        load_handoff_config(path)
    assert str(path) in str(refused.value)


def test_the_shipped_handoff_file_loads() -> None:
    config = load_handoff_config(Settings().flows_dir / "handoff.yml")
    assert "general" in config.departments
