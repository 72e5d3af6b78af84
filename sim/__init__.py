"""aicloud-sim: an agent-based simulation of the AI-cloud market war."""

__version__ = "0.1.0"
