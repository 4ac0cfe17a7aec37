"""The job API and the runner that executes it."""

from connectors.runtime.job import Job, State, Stream
from connectors.runtime.runner import Runner

__all__ = ["Job", "Runner", "State", "Stream"]
