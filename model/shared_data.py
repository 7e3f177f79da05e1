"""Where the project's read-only data lives: ``../shared`` beside the repository root (in CI too),
never copied into the repository.

One definition, so that every reader, test, benchmark and dev tool finds the same files whatever
directory it is started from (a relative ``../shared`` depends on the working directory).
"""
from __future__ import annotations

from pathlib import Path

__all__ = ["REPO", "SHARED", "MASAKHANER2", "MASAKHANEWS", "MASAKHANER_IAA"]

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
MASAKHANER2 = SHARED / "data" / "masakhaner2"        # <lang>/{train,dev,test}.txt (CoNLL)
MASAKHANEWS = SHARED / "data" / "masakhanews"        # <lang>/{train,dev,test}.tsv
MASAKHANER_IAA = SHARED / "data" / "masakhaner-iaa"  # <lang>.txt, one tag column per annotator
