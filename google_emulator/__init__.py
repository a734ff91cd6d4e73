"""An offline Google: OAuth 2.0, the Admin SDK Directory API and Chrome Policy API, over plain HTTP.

Standalone on purpose: it imports nothing from the console, so it can run as a separate process
(``python -m google_emulator``) or in-process in tests (``EmulatorServer(...).start()``).
"""

from google_emulator.server import EmulatorServer
from google_emulator.state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, EmulatorConfig, EmulatorState

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "EmulatorConfig", "EmulatorServer", "EmulatorState"]
