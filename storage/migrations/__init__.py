"""Schema migrations (Alembic).  ``storage.migrate`` runs them when a store is opened."""
