"""Starts the real server for this suite (see clients/testing/horizon_server.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "testing"))

from horizon_server import server_url  # noqa: E402,F401 - a fixture, used by name
