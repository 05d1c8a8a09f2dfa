"""The page's files as the package finds them: its own static files, and nothing else whatever
the name asked for."""

from __future__ import annotations

import pytest

from gateway import ui


def test_the_page_s_files_are_found_with_their_media_types() -> None:
    index = ui.asset(ui.INDEX)
    assert index is not None and index[1].startswith("text/html") and b"/ui/app.js" in index[0]
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css"),
                       ("icon.svg", "image/svg+xml")):
        found = ui.asset(name)
        assert found is not None and found[1].startswith(kind) and found[0]


@pytest.mark.parametrize("name", ["..", "../__init__.py", "a\\\\b.js", ".x.js", "static", "x.js\x00",
                                  "__init__.py", "nothing.js", "static/app.js", "", "app.js/"])
def test_no_other_name_is_a_file_of_the_page(name: str) -> None:
    assert ui.asset(name) is None
