"""Failpoints: what GATEWAY_FAILPOINTS says, for which model; a bad entry is named."""

from __future__ import annotations

import pytest

from gateway.engine.process.failpoints import FailpointError, Failpoints


def test_unset_means_none() -> None:
    assert Failpoints.parse("", "m").action("engine.decode") is None


def test_entries_apply_to_every_model_or_the_one_named() -> None:
    text = "engine.decode=segfault, engine.load@other=exit"
    mine = Failpoints.parse(text, "mine")
    assert mine.action("engine.decode") == "segfault"
    assert mine.action("engine.load") is None
    assert Failpoints.parse(text, "other").action("engine.load") == "exit"


@pytest.mark.parametrize("text", ["engine.decode", "engine.decod=segfault", "engine.decode=explode"])
def test_a_bad_entry_is_named(text: str) -> None:
    with pytest.raises(FailpointError, match=text.split("=")[0]):
        Failpoints.parse(text, "m")
