"""The error vocabulary: a configuration error is never counted as a failed fit."""

from __future__ import annotations

import pickle

import pytest

from volguard.errors import ConfigError, DataFileError, DataRowError, FetchError
from volguard.models.base import FIT_ERRORS


def test_a_config_error_escapes_the_failed_fit_handlers() -> None:
    with pytest.raises(ConfigError):
        try:
            raise ConfigError("svi: weighting 3 is not one of vega, spread, open_interest, none")
        except FIT_ERRORS:
            pytest.fail("a configuration error was taken for a failed fit")


def test_numerical_and_data_failures_are_still_fit_errors() -> None:
    for exc in (ValueError("no quote to fit"), ZeroDivisionError(), DataFileError("f", "p", "e")):
        assert isinstance(exc, FIT_ERRORS)


@pytest.mark.parametrize(
    "error",
    [
        DataFileError("a.csv", "truncated", "a gzip file"),
        DataRowError("a.csv", 3, "strike", "a number", "x"),
        FetchError("https://x", "404"),
        ConfigError("bad"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_cross_a_process_boundary_intact(error: Exception) -> None:
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error) and str(again) == str(error)
