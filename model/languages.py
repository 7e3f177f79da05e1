"""MasakhaNER / MasakhaNEWS language codes -> the language name the LLM prompt uses.

One map for the selection CLI, the simulation's LLM oracle and the benchmarks, so the same data
folder always yields the same prompt. The names are what the languages' speakers and the
MasakhaNER papers call them (Kiswahili, isiZulu, chiShona ...).
"""
from __future__ import annotations

__all__ = ["LANGUAGES", "language_name"]

LANGUAGES = {"bam": "Bambara", "bbj": "Ghomala", "fon": "Fon", "hau": "Hausa", "ibo": "Igbo",
             "kin": "Kinyarwanda", "lug": "Luganda", "luo": "Luo", "mos": "Mossi",
             "nya": "Chichewa", "pcm": "Naija Pidgin", "sna": "chiShona", "swa": "Kiswahili",
             "tsn": "Setswana", "twi": "Twi", "wol": "Wolof", "xho": "isiXhosa", "yor": "Yoruba",
             "zul": "isiZulu"}


def language_name(code: str, default: str | None = None) -> str | None:
    """The prompt name of language ``code`` (e.g. a data folder's name), else ``default``."""
    return LANGUAGES.get(code, default)
