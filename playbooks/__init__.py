"""Cutover and rollback playbooks: load (loader), check (actions' schemas), run, resume and
rehearse (runner), journal (journal); the shipped `cutover.yaml` and `rollback.yaml`."""

from migrate.playbooks.loader import load_playbook
from migrate.playbooks.runner import RehearsalReport, RunOptions, RunOutcome, Runner

__all__ = ["load_playbook", "RehearsalReport", "RunOptions", "RunOutcome", "Runner"]
