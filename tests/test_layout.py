"""mail/ stays pure: it takes its settings as small value types and never imports the config,
the database or a transport."""

import ast
from pathlib import Path

import pytest

MAIL = Path(__file__).parents[1] / "mailthreads" / "mail"
FORBIDDEN = ("config", "db", "ingest", "outgoing", "transport", "cli")


@pytest.mark.parametrize("path", sorted(MAIL.glob("*.py")), ids=lambda p: p.name)
def test_mail_imports_nothing_outside_mail(path):
    imported = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 2:  # from ..x import y
            imported.append(node.module or "")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mailthreads."):
            imported.append(node.module.split(".")[1])
    assert [name for name in imported if name.split(".")[0] in FORBIDDEN] == []
