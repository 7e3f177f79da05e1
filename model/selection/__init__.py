"""Step 1 of the method: choose the LLM annotator by agreement with gold and with itself.

``run_selection`` annotates a gold sample R times with every candidate, ``evaluate`` computes the
figures, ``choose`` applies the stated rule, ``write_report`` writes JSON/Markdown/HTML + plots.
CLI: ``python -m model.selection --help``.
"""
from model.selection.candidates import Candidate, CandidateError, load_candidates, parse_candidates
from model.selection.evaluate import evaluate
from model.selection.rule import ChoiceRule, Decision, Ranked, choose
from model.selection.run import GoldSample, SelectionResult, run_selection, write_env_file
from model.sampling import SampleInfo, sample_gold

__all__ = ["Candidate", "CandidateError", "load_candidates", "parse_candidates", "evaluate",
           "ChoiceRule", "Decision", "Ranked", "choose", "GoldSample", "SelectionResult",
           "run_selection", "write_env_file", "SampleInfo", "sample_gold"]
