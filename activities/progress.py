"""Heartbeats of the long activities (renders, sweeps): the worker tells Temporal it is still
at work, so a hung try is retried after the call's heartbeat_timeout (workflows/common.py)."""

from __future__ import annotations

from temporalio import activity


def beat(progress: object) -> None:
    """Heartbeat with ``progress`` (a stage name, a count); nothing when the method runs outside
    an activity (called directly by the CLI or a test). The SDK throttles the heartbeats it
    sends, so calling this once per row is cheap."""
    if activity.in_activity():
        activity.heartbeat(progress)
