"""Where the tests find the repository and the shared public datasets (read in place, never copied)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
ML100K = DATA / "movielens-100k" / "u.data"
