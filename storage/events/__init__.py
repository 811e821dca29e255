"""CRM event history: clients, subscriptions, purchases, tickets and usage events.

Modules, each with one job: ``tables`` (the narrow event tables), ``mapping`` (which user
column is which canonical field), ``ingest`` (validate and store one event file in one
transaction), ``stream`` and ``append`` (large append-only files, read and stored chunk by
chunk), ``types`` (names for usage event type codes), ``features`` (point-in-time features
as of a date, aggregated in SQL), ``labels`` (churn labels and observation dates for
training), ``commands`` (``churnguard features``) and ``sample`` (a reproducible demo data set).  This package never imports ``storage.db`` at import time so
that ``storage.db`` can import ``storage.events.tables`` to register the tables.
"""
