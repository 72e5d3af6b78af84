"""Entry module for ``solara run sim.viz.app`` (what ``aicloud dashboard`` starts).

The base config comes from the environment because ``solara run`` imports this
module itself; ``aicloud dashboard`` validates the config before it starts the
server, so a bad config is reported without a traceback.
"""

from __future__ import annotations

import os

from sim.config import load_config
from sim.viz import CONFIG_ENV
from sim.viz.page import make_page

DEFAULT_CONFIG = "china_2025"

Page = make_page(load_config(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG))
