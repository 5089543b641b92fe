"""``python -m tsm_rail TrainingSetMaker --config=...``: how a ceci pipeline runs the stage."""

from ceci import PipelineStage

import tsm_rail  # noqa: F401  (defines the stage that PipelineStage.main looks up by name)

if __name__ == "__main__":
    PipelineStage.main()
