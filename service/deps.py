"""Annotated FastAPI dependencies (FastAPI full-stack template style).

The app factory puts the settings, the job store and the runner on ``app.state``; routes
receive them as ``settings: SettingsDep``, ``store: JobStoreDep``, ``runner: RunnerDep``.
Tests may swap any of them with ``app.dependency_overrides``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mer.settings import Settings
from workers.jobstore import JobStore
from workers.runner import JobRunner


def get_app_settings(request: Request) -> Settings:
    """The :class:`Settings` the app was created with."""
    return request.app.state.settings


def get_job_store(request: Request) -> JobStore:
    """The app's :class:`JobStore`."""
    return request.app.state.job_store


def get_runner(request: Request) -> JobRunner:
    """The app's :class:`JobRunner`."""
    return request.app.state.runner


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
JobStoreDep = Annotated[JobStore, Depends(get_job_store)]
RunnerDep = Annotated[JobRunner, Depends(get_runner)]
