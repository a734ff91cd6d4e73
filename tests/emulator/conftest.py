"""The emulator's own tests: no database, no Django; the fixtures come from the emulator's plugin."""

import os

import pytest

from google_emulator.pytest_plugin import google_emulator, google_emulator_server, pytest_configure  # noqa: F401

# oauthlib refuses plain HTTP and widened scopes unless told; the console sets these only when
# GOOGLE_EMULATOR_HOST is set, and so do these tests.
os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
os.environ["OAUTHLIB_RELAX_TOKEN_SCOPE"] = "1"


@pytest.fixture
def emulator(google_emulator):  # noqa: F811 - a shorter name for the emulator's own tests
    return google_emulator
