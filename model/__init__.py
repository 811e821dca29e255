"""Churn model lifecycle: features, split, tuning, threshold, evaluation, gate, artifact, model card.

LightGBM's OpenMP threads busy-wait by default; on a machine where other work (the bot, the
scheduler, a database) competes for the same cores that turns a 2-second fit into minutes.
Passive waiting has to be chosen before the OpenMP runtime loads, i.e. before the first
``import lightgbm`` — hence here, at the top of the package every LightGBM user imports.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
