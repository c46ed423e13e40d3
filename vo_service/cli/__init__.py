"""The ``vosim`` command: one verb per pipeline stage, plus the server and the demo.

Each verb parses its options, calls the plain Python function of its stage
and turns the outcome into an exit status; the work itself lives in
``model_training`` (the stages) and ``vo_service`` (the server). Modules
hold groups of verbs: `catalogue` (synth, ingest, categories), `learning`
(train, embed, evaluate, tune), `neighbours`, `publishing` (publish,
unpublish), `serving` (serve) and `demo`; `options` holds the arguments
several verbs share and `command` assembles them.
"""

from .command import build_parser, main

__all__ = ["build_parser", "main"]
