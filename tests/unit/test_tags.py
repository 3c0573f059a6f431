"""Every tag name lives in retrain.tags, and the README's audit-trail table is that list."""

from __future__ import annotations

import ast
import re

from retrain.tags import Decision, Tag
from tests.support import REPO
from tests.unit.test_boundaries import SHIPPED, python_files

TAGS_MODULE = REPO / "include" / "retrain" / "tags.py"


def string_literals(path) -> set[str]:
    return {
        node.value
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def test_no_tag_name_is_spelled_outside_the_tag_module():
    names = {str(tag) for tag in Tag}
    spelled = {
        str(path.relative_to(REPO)): sorted(found)
        for path in python_files(*SHIPPED)
        if path != TAGS_MODULE and (found := string_literals(path) & names)
    }
    assert spelled == {}


def test_the_readme_tag_table_lists_every_tag_with_its_meaning():
    readme = (REPO / "README.md").read_text()
    rows = dict(re.findall(r"^\| `([a-z_.]+)` \| (.+?) \|$", readme, flags=re.M))
    for tag in Tag:
        assert rows.get(str(tag)) == tag.meaning, f"README tag table: {tag} must read: {tag.meaning}"
    for decision in Decision:
        assert f"`{decision}`" in readme, decision
