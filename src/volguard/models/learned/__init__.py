"""Learned engines: models trained across many snapshots, conditioned on one.

A learned engine differs from a first-principles one in one step: before ``fit(snapshot)`` it
needs a model trained on other snapshots. Such engine classes set the class attribute
``needs_training = True`` and give a classmethod ``train(snapshots, **settings)`` that returns
the model, passed back as the constructor setting ``model``::

    model = ENGINES["gbm"].train(history, half_life_days=7)
    engine = make_engine("gbm", model=model).fit(snapshot)

:class:`~volguard.models.base.SurfaceEngine` does not declare the attribute; callers read it as
``getattr(engine_class, "needs_training", False)``. The trained model is an immutable,
picklable value compared by content, so ``clone`` (which deep-copies settings) keeps it.
"""

from volguard.models.learned.features import DEFAULT_FEATURES, FEATURES, state_features
from volguard.models.learned.gbm import GBMSurface, GBMSurfaceModel, train_gbm, training_rows

__all__ = [
    "DEFAULT_FEATURES",
    "FEATURES",
    "GBMSurface",
    "GBMSurfaceModel",
    "state_features",
    "train_gbm",
    "training_rows",
]
