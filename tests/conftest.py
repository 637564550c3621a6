import os
from pathlib import Path

import pytest

_DEFAULT_CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"


@pytest.fixture(scope="session")
def corpora() -> Path:
    """The shared reference corpora (../shared/corpora, or $MAILTHREADS_CORPORA)."""
    path = Path(os.environ.get("MAILTHREADS_CORPORA") or _DEFAULT_CORPORA)
    if not path.is_dir():
        pytest.fail(f"corpora not found at {path}; set MAILTHREADS_CORPORA")
    return path
