"""The LLM selection run as a backend job for one Label Studio project.

Gold = the project's human annotations (read through the API); candidates = the YAML/JSON file
named by the project's extra param ``selection_candidates`` or ``SELECTION_CANDIDATES``. Output goes
to ``MODEL_DIR/projects/<id>/selection/`` (selection.json, report.md/html, plots, llm.env). LLM
calls go through the shared cache, so a job killed mid-way resumes where it stopped.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from backend.errors import BadRequest, Conflict

if TYPE_CHECKING:
    from backend.ml import MLBackend


def select_for_project(backend: "MLBackend", project_id: int) -> dict:
    from backend.ls_client import LabelStudioClient
    from model.selection.candidates import load_candidates
    from model.selection.run import GoldSample, run_selection

    spec, _ = backend.spec_for(project_id, None)
    if spec.ner is None:
        raise BadRequest("the selection run compares NER annotators: the project has no <Labels> control")
    path = backend.project_option(project_id, "selection_candidates",
                                  backend.settings.env.get("SELECTION_CANDIDATES"))
    if not path:
        raise BadRequest("no candidates: set SELECTION_CANDIDATES or the project's extra param "
                         "selection_candidates to a YAML/JSON candidates file")
    client = LabelStudioClient(backend.settings.label_studio_url, backend.settings.label_studio_api_key)
    examples = client.annotated_examples(project_id, spec)
    if len(examples) < 5:
        raise Conflict(f"project {project_id} has {len(examples)} annotated task(s); the selection run needs >= 5")
    out_dir = backend.store.project_dir(project_id) / "selection"
    result = run_selection(load_candidates(path), GoldSample.from_examples(examples),
                           runs=int(backend.project_option(project_id, "selection_runs", 5)),
                           store_dir=backend.settings.model_dir / "llm", out_dir=out_dir, progress=False,
                           labels=list(spec.ner.labels), language=backend.project_option(project_id, "language"),
                           environ=backend.settings.env, project=f"selection-{project_id}")
    return {"status": "done", "winner": result.winner, "report": str(out_dir / "report.md"),
            "env_file": str(result.env_path) if result.env_path else None, "calls_made": result.calls_made}
