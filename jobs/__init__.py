"""Scheduled MLOps jobs: ingest, drift, performance, retrain — and the alerts they raise.

How new data flows (one ``churnguard jobs run ingest``, or one scheduled ingest)::

    inbox file ──ingest──> batch stored ──score with the champion now──> predictions (record id, version)
                                │
                                ├─> drift job: batch vs the champion's training reference ──> drift alert
                                ├─> performance job: labels of the batch vs the predictions made
                                │     on arrival (realised recall) / calibrated probabilities of the
                                │     unlabelled rows (estimated recall) ──> recall / early_warning alert
                                └─> retrain job (labelled batch, drift or recall alert, when enabled in
                                      CHURNGUARD_RETRAIN_ON) ──> challenger ──gate──> champion or rejected
                                      (CHURNGUARD_PROMOTION=shadow: candidate in shadow, see ``shadow``)

Scoring happens on arrival, before the retrain that may learn from the batch, so realised
recall always measures predictions made without the outcomes.  Each step is its own
recorded job run (``job_run``); the drift and performance checks are stored as reports
(``report``); alerts are stored (``alert``) and sent through a :class:`jobs.notifier.Notifier`
(the bot's), throttled by a cooldown.

Modules: ``runner`` (run, record, alert, follow-ups), ``scheduler`` (cron + catch-up after
downtime + alert outbox), ``notifier``, ``alerts``, ``runs``, ``reports``, ``data`` (batch
frames and scoring), one module per job, ``shadow`` (the challenger scored beside the champion on
arrival and measured beside it by the performance job), ``cron``, ``commands`` (CLI).
"""
