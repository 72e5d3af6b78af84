"""Sub-commands of the ``aicloud`` CLI: one module each, with ``add_parser`` and ``main``."""
