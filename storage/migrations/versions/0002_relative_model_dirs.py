"""Model folders are named relative to the models folder, so a store can move.

Release 0.1.0 stored each version's folder as an absolute path
(``ModelVersion.artifact_dir = /old/home/models/v3``).  A home copied, restored from a backup
or mounted elsewhere (a moved Docker volume) then served the old location's files, or none.
From this revision on the column holds the folder relative to the models folder
(``<CHURNGUARD_HOME>/models``), which is the version's name, and the registry resolves it
against the models folder of the home in use (``model.registry.artifact_path``).

What the upgrade does with each row whose path is absolute:

* its last part is the row's version (``.../v3`` for v3: every folder ChurnGuard ever wrote):
  the column becomes ``v3``.  That covers a folder inside the current models folder, a folder
  of a moved home whose copy sits in the current models folder, and a folder that is in
  neither place: such a version is then reported as missing *from this home's models folder*
  (``churnguard models``; the registry falls back to the newest intact previous champion)
  until its folder is copied there, instead of being served from another home behind the
  operator's back.  Each change is logged with the old path, so the operator knows where to
  copy a missing folder from.
* any other absolute path (a row edited by hand) is kept as it is, with a warning: the
  registry still reads an absolute path as it is, so nothing changes for that row.

Relative paths are left alone.  The migration needs no knowledge of the home, so it gives the
same result on SQLite and PostgreSQL, whoever opens the store first.

Revision ID: relative_model_dirs
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import logging
from pathlib import PurePath, PurePosixPath, PureWindowsPath

import sqlalchemy as sa
from alembic import op

revision = "relative_model_dirs"
down_revision = "0001"
branch_labels = None
depends_on = None

log = logging.getLogger("storage.migrate")

MODEL_VERSION = sa.table(
    "model_version",
    sa.column("id", sa.Integer),
    sa.column("version", sa.String),
    sa.column("artifact_dir", sa.String),
)


def _path(text: str) -> PurePath:
    """The stored path as the system that wrote it saw it (a store made on Windows has back slashes)."""
    return PureWindowsPath(text) if "\\" in text or PureWindowsPath(text).drive else PurePosixPath(text)


def relative_dir(version: str, stored: str) -> str | None:
    """The relative value for an absolute ``stored`` folder of ``version``; None to keep the row."""
    path = _path(stored)
    if not path.is_absolute():
        return None
    if path.name == version:
        return version
    return None


def upgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.select(MODEL_VERSION.c.id, MODEL_VERSION.c.version, MODEL_VERSION.c.artifact_dir)
                              .order_by(MODEL_VERSION.c.id)).all()
    for row in rows:
        stored = str(row.artifact_dir or "")
        relative = relative_dir(str(row.version), stored)
        if relative is not None:
            connection.execute(sa.update(MODEL_VERSION).where(MODEL_VERSION.c.id == row.id)
                               .values(artifact_dir=relative))
            log.info("model %s: its folder is now found in the models folder of CHURNGUARD_HOME as %s "
                     "(the store named %s)", row.version, relative, stored)
        elif _path(stored).is_absolute():
            log.warning("model %s: folder %s is not named after its version; the path is kept as it is",
                        row.version, stored)


def downgrade() -> None:
    raise NotImplementedError(
        "model folders cannot be made absolute again without knowing the home they belong to; "
        "restore the backup taken before the upgrade instead"
    )
