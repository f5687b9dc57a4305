"""The two ways a forecast can be refused: bad input (before any work) or a fit that went wrong."""

from __future__ import annotations


class ForecastInputError(ValueError):
    """The data or settings cannot produce an honest forecast; raised before any fitting starts."""


class ForecastFitError(RuntimeError):
    """Training failed (e.g. the loss went non-finite); the model holds no usable forecast."""
