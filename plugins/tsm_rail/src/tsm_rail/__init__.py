"""tsm-rail: the Training Set Maker as a RAIL stage.

``TrainingSetMaker`` (:mod:`tsm_rail.stage`) makes a RAIL pipeline's training and validation
tables with :func:`tsm_core.run`; :mod:`tsm_rail.options` turns its options into the run config.
"""

from tsm_rail.stage import TrainingSetMaker, training_set_maker

__all__ = ["TrainingSetMaker", "training_set_maker"]
