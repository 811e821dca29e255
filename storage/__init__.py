"""Persistence for ChurnGuard: CRM batches and client records, models, predictions, alerts, audit."""

from storage.db import Database
from storage.errors import UserError

__all__ = ["Database", "UserError"]
