"""The shape every learned engine shares: a model trained beforehand, checked at fit."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from volguard.market.snapshot import MarketSnapshot
from volguard.models.base import SurfaceEngine


class LearnedSurface(SurfaceEngine):
    """A surface engine conditioned on a model trained across snapshots (package docstring).

    Subclasses set ``trainer`` (the training function, wrapped in ``staticmethod``),
    ``model_type`` (what it returns) and ``needs`` (what training needs beyond the core
    dependencies, for the error message), and store the model as the setting ``model``.
    """

    needs_training: ClassVar[bool] = True
    trainer: ClassVar[Callable[..., Any]]
    model_type: ClassVar[type]
    needs: ClassVar[str] = ""
    model: Any

    @classmethod
    def train(cls, snapshots: Iterable[MarketSnapshot], **settings: Any) -> Any:
        """Train the model this engine needs: its ``trainer`` with ``settings``."""
        return cls.trainer(snapshots, **settings)

    def _trained_model(self) -> Any:
        """The ``model`` setting, checked.

        Raises
        ------
        ValueError
            If there is no model.
        TypeError
            If the model is not this engine's kind.
        """
        if self.model is None:
            raise ValueError(
                f"{self.name} needs a trained model: {self.trainer.__name__}(snapshots) (or "
                f"ENGINES[{self.name!r}].train(snapshots){self.needs}), then "
                f"make_engine({self.name!r}, model=...)"
            )
        if not isinstance(self.model, self.model_type):
            raise TypeError(
                f"model must be a {self.model_type.__name__}; received {type(self.model).__name__}"
            )
        return self.model
