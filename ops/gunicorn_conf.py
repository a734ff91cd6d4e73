"""gunicorn's settings file (``scripts/prod.sh web``): its own log lines in the console's format (JSON lines in
production), so one stream holds one format."""

import os

from ops.logs import logging_config

logconfig_dict = logging_config(
    json_lines=os.environ.get("LOG_FORMAT", "json") == "json", level=os.environ.get("LOG_LEVEL", "INFO")
)
