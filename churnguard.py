"""ChurnGuard settings and command line.

Settings live here, at the root, because every package reads them and none of the
packages may own them: ``storage`` and ``model`` take plain values, while ``bot`` and
``jobs`` receive a ``Settings`` object.  The command line only parses arguments and
prints; the work itself is done by the packages, imported lazily so that ``churnguard
--help`` stays fast and a missing optional piece never breaks unrelated commands.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SAMPLE_DATA = Path(__file__).resolve().parent / "storage" / "sample_data" / "WA_Fn-UseC_-Telco-Customer-Churn.csv"


def _env(name: str) -> Any:
    """Bind a field to exactly one environment variable name (no prefix magic)."""
    return AliasChoices(name, name.lower())


def _variable_of(key: str) -> str:
    """The environment variable a keyword argument of ``Settings`` stands for (unchanged when it
    is already one, or one of pydantic-settings' ``_env_file``-style options)."""
    info = Settings.model_fields.get(key)
    alias = info.validation_alias if info is not None else None
    return str(alias.choices[0]) if isinstance(alias, AliasChoices) else key


def _split_csv(value: object) -> object:
    """Comma-separated lists are friendlier in a .env file than JSON arrays."""
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Everything a deployment may tune; each field names its environment variable."""

    # No ``populate_by_name``: with it, pydantic-settings also reads each field's bare name from
    # the environment and .env (``HOME``, ``DATABASE_URL``, ``LOG_LEVEL``...), so a login's $HOME
    # became the data folder.  Only the names given by ``_env`` are read; code that builds
    # Settings by field name (flags, tests) goes through ``__init__`` below.
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    def __init__(self, **values: Any) -> None:
        """Accept field names (``Settings(home=...)``) as well as variable names, for code only:
        they are translated to the variable name here, never looked up in the environment."""
        super().__init__(**{_variable_of(key): value for key, value in values.items()})

    # --- where things live -------------------------------------------------------------
    home: Path = Field(Path("./var"), validation_alias=_env("CHURNGUARD_HOME"))
    database_url: str = Field("", validation_alias=_env("CHURNGUARD_DATABASE_URL"))
    inbox: Path | None = Field(None, validation_alias=_env("CHURNGUARD_INBOX"))
    log_level: str = Field("INFO", validation_alias=_env("CHURNGUARD_LOG_LEVEL"))

    # --- Telegram ------------------------------------------------------------------------
    telegram_bot_token: SecretStr | None = Field(None, validation_alias=_env("TELEGRAM_BOT_TOKEN"))
    telegram_api_base_url: str = Field(
        "https://api.telegram.org", validation_alias=_env("TELEGRAM_API_BASE_URL")
    )
    admin_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, validation_alias=_env("CHURNGUARD_ADMIN_IDS")
    )
    viewer_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, validation_alias=_env("CHURNGUARD_VIEWER_IDS")
    )
    max_upload_mb: float = Field(20.0, gt=0, le=2000, validation_alias=_env("CHURNGUARD_MAX_UPLOAD_MB"))

    # --- dataset schema ------------------------------------------------------------------
    id_column: str = Field("customerID", min_length=1, validation_alias=_env("CHURNGUARD_ID_COLUMN"))
    label_column: str = Field("Churn", min_length=1, validation_alias=_env("CHURNGUARD_LABEL_COLUMN"))
    positive_label: str = Field("Yes", min_length=1, validation_alias=_env("CHURNGUARD_POSITIVE_LABEL"))
    ignore_columns: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("CHURNGUARD_IGNORE_COLUMNS")
    )
    no_history_rule: str = Field("tenure <= 0", validation_alias=_env("CHURNGUARD_NO_HISTORY_RULE"))
    # Columns ingest flagged as leaking the label are left out of training unless named here.
    keep_leaking_columns: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("CHURNGUARD_KEEP_LEAKING_COLUMNS")
    )
    # The column of a client file holding each row's as-of date (storage.ingest); empty: none.
    as_of_column: str = Field("", max_length=200, validation_alias=_env("CHURNGUARD_AS_OF_COLUMN"))

    # --- event history (storage/events, model/event_source.py) ------------------------------
    # "auto" trains on the flat client table when one with labels is stored, else on events.
    training_source: Literal["auto", "clients", "events"] = Field(
        "auto", validation_alias=_env("CHURNGUARD_TRAINING_SOURCE"))
    churn_horizon_days: int = Field(30, ge=1, le=3650, validation_alias=_env("CHURNGUARD_CHURN_HORIZON_DAYS"))
    observation_every: str = Field("month", validation_alias=_env("CHURNGUARD_OBSERVATION_EVERY"))
    feature_windows: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [7, 30, 90], validation_alias=_env("CHURNGUARD_FEATURE_WINDOWS"))
    # Usage event types with their own feature columns; the rarer ones are dropped and named
    # in the training reply and the model card (storage/events/features.py says why 100).
    max_event_types: int = Field(100, ge=1, le=10_000, validation_alias=_env("CHURNGUARD_MAX_EVENT_TYPES"))

    # --- ingestion limits ----------------------------------------------------------------
    max_file_mb: float = Field(500.0, gt=0, validation_alias=_env("CHURNGUARD_MAX_FILE_MB"))
    max_rows: int = Field(5_000_000, gt=0, validation_alias=_env("CHURNGUARD_MAX_ROWS"))
    max_columns: int = Field(1000, gt=1, validation_alias=_env("CHURNGUARD_MAX_COLUMNS"))

    # --- model quality and business goal -------------------------------------------------
    recall_target: float = Field(0.90, gt=0, lt=1, validation_alias=_env("CHURNGUARD_RECALL_TARGET"))
    contact_cost: float = Field(5.0, ge=0, validation_alias=_env("CHURNGUARD_CONTACT_COST"))
    retained_value: float = Field(300.0, ge=0, validation_alias=_env("CHURNGUARD_RETAINED_VALUE"))
    offer_success_rate: float = Field(0.25, ge=0, le=1, validation_alias=_env("CHURNGUARD_OFFER_SUCCESS_RATE"))
    tuning_seconds: float = Field(20.0, gt=0, le=3600, validation_alias=_env("CHURNGUARD_TUNING_SECONDS"))
    champion_tolerance: float = Field(
        0.02, ge=0, lt=1, validation_alias=_env("CHURNGUARD_CHAMPION_TOLERANCE")
    )
    seed: int = Field(42, ge=0, validation_alias=_env("CHURNGUARD_SEED"))
    # Labelled rows over at least this many as-of dates are validated out of time (model/validation.py).
    out_of_time_min_dates: int = Field(3, ge=3, le=1000, validation_alias=_env("CHURNGUARD_OUT_OF_TIME_MIN_DATES"))

    # --- jobs (scheduled MLOps jobs, see jobs/) ----------------------------------------------
    # Cron expressions are standard 5-field crontab lines in UTC (0 or 7 = Sunday); "off"
    # disables a schedule (the job still runs with `churnguard jobs run NAME`).
    ingest_cron: str = Field("*/5 * * * *", validation_alias=_env("CHURNGUARD_INGEST_CRON"))
    drift_cron: str = Field("0 * * * *", validation_alias=_env("CHURNGUARD_DRIFT_CRON"))
    performance_cron: str = Field("10 * * * *", validation_alias=_env("CHURNGUARD_PERFORMANCE_CRON"))
    retrain_cron: str = Field("0 3 * * 0", validation_alias=_env("CHURNGUARD_RETRAIN_CRON"))
    source_url: str = Field("", validation_alias=_env("CHURNGUARD_SOURCE_URL"))
    source_query: str = Field("", validate_default=True, validation_alias=_env("CHURNGUARD_SOURCE_QUERY"))
    drift_psi_moderate: float = Field(0.10, gt=0, validation_alias=_env("CHURNGUARD_DRIFT_PSI_MODERATE"))
    drift_psi_threshold: float = Field(0.25, gt=0, validation_alias=_env("CHURNGUARD_DRIFT_PSI_THRESHOLD"))
    drift_alpha: float = Field(0.01, gt=0, lt=1, validation_alias=_env("CHURNGUARD_DRIFT_ALPHA"))
    drift_min_samples: int = Field(200, ge=1, validation_alias=_env("CHURNGUARD_DRIFT_MIN_SAMPLES"))
    drift_share: float = Field(0.30, ge=0, lt=1, validation_alias=_env("CHURNGUARD_DRIFT_SHARE"))
    min_churners: int = Field(20, ge=1, validation_alias=_env("CHURNGUARD_MIN_CHURNERS"))
    alert_cooldown_hours: float = Field(24.0, ge=0, le=24 * 365,
                                        validation_alias=_env("CHURNGUARD_ALERT_COOLDOWN_HOURS"))
    retrain_on: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["schedule", "new_labels", "drift", "recall"],
        validation_alias=_env("CHURNGUARD_RETRAIN_ON"),
    )
    retrain_window_batches: int = Field(0, ge=0, validation_alias=_env("CHURNGUARD_RETRAIN_WINDOW_BATCHES"))
    # The shadow challenger (jobs/shadow.py): the newest candidate version scores every arriving
    # client beside the champion, unseen by anyone, and is measured beside it when outcomes arrive.
    shadow: bool = Field(False, validation_alias=_env("CHURNGUARD_SHADOW"))
    # "gate": a challenger that passes the acceptance gate is champion at once; "shadow": it runs
    # in shadow first and the comparison on later outcomes promotes or retires it.
    promotion: Literal["gate", "shadow"] = Field("gate", validation_alias=_env("CHURNGUARD_PROMOTION"))

    @field_validator("ingest_cron", "drift_cron", "performance_cron", "retrain_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from jobs.cron import check_cron

        return check_cron(value)

    @field_validator("retrain_on", mode="before")
    @classmethod
    def _retrain_triggers(cls, value: object) -> object:
        triggers = _split_csv(value)
        allowed = ("schedule", "new_labels", "drift", "recall")
        if isinstance(triggers, list):
            unknown = [t for t in triggers if t not in allowed]
            if unknown:
                raise ValueError(f"unknown trigger(s) {', '.join(map(str, unknown))} (use any of {', '.join(allowed)})")
        return triggers

    @field_validator("shadow", mode="before")
    @classmethod
    def _on_off(cls, value: object) -> object:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("on", "true", "yes", "1"):
            return True
        if text in ("off", "false", "no", "0", ""):
            return False
        raise ValueError("must be on or off")

    @field_validator("promotion", mode="before")
    @classmethod
    def _promotion(cls, value: object) -> object:
        text = str(value).strip().lower()
        if text not in ("gate", "shadow"):
            raise ValueError("must be gate (a challenger that passes the acceptance gate becomes champion at once) "
                             "or shadow (it runs in shadow first, and the comparison on later outcomes decides)")
        return text

    @field_validator("promotion")
    @classmethod
    def _promotion_needs_shadow(cls, value: str, info: ValidationInfo) -> str:
        shadow = info.data.get("shadow")
        if value == "shadow" and shadow is False:  # None: CHURNGUARD_SHADOW itself was invalid, reported already
            raise ValueError("shadow promotion judges the challenger on the clients it scores in shadow: "
                             "set CHURNGUARD_SHADOW=on as well")
        return value

    @field_validator("source_url")
    @classmethod
    def _source_url(cls, value: str) -> str:
        if value:
            from sqlalchemy.engine import make_url
            from sqlalchemy.exc import ArgumentError

            try:
                make_url(value)
            except ArgumentError:
                raise ValueError("must be a database URL such as postgresql+psycopg://user@host/db") from None
        return value

    @field_validator("drift_psi_threshold")
    @classmethod
    def _psi_levels(cls, value: float, info: ValidationInfo) -> float:
        moderate = info.data.get("drift_psi_moderate")
        if moderate is not None and value <= moderate:
            raise ValueError(f"must be above CHURNGUARD_DRIFT_PSI_MODERATE ({moderate})")
        return value

    @field_validator("source_query")
    @classmethod
    def _source_pair(cls, value: str, info: ValidationInfo) -> str:
        url = info.data.get("source_url")
        if url is None:  # the URL itself was invalid; that error is reported already
            return value
        if bool(url) != bool(value.strip()):
            raise ValueError("CHURNGUARD_SOURCE_URL and CHURNGUARD_SOURCE_QUERY must be set together")
        return value
    # --- end of jobs settings ------------------------------------------------------------------

    @field_validator("observation_every")
    @classmethod
    def _every(cls, value: str) -> str:
        text = value.strip().lower()
        if text in ("month", "monthly", "m", "week", "weekly", "w", "day", "daily"):
            return text
        if text.endswith("d") and text[:-1].isdigit() and int(text[:-1]) > 0:
            return text
        raise ValueError("must be month, week, day or <N>d (e.g. 14d)")

    @field_validator("feature_windows", mode="before")
    @classmethod
    def _windows(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("feature_windows")
    @classmethod
    def _windows_valid(cls, value: list[int]) -> list[int]:
        if not value or any(w <= 0 or w > 3650 for w in value) or len(set(value)) != len(value):
            raise ValueError("must be distinct whole numbers of days between 1 and 3650, e.g. 7,30,90")
        return value

    @field_validator("admin_ids", "viewer_ids", "ignore_columns", "keep_leaking_columns", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("telegram_api_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        if value and not value.startswith(("sqlite:", "postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        return value

    @field_validator("as_of_column")
    @classmethod
    def _as_of_column(cls, value: str) -> str:
        return value.strip()

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return value.upper()

    @model_validator(mode="after")
    def _derived_paths(self) -> Settings:
        # One home, one database: two homes must never share a store by accident.
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.home / 'churnguard.db').as_posix()}"
        if self.inbox is None:
            self.inbox = self.home / "inbox"
        return self

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def inbox_dir(self) -> Path:
        assert self.inbox is not None
        return self.inbox

    def explicit(self, field: str) -> bool:
        """True when the user set this field (env, .env or flag) rather than leaving the default."""
        return field in self.model_fields_set


def format_settings_error(error: ValidationError) -> str:
    """One line per bad value, naming the environment variable the user has to fix."""
    lines = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else "?"
        info = Settings.model_fields.get(field)
        alias = info.validation_alias if info is not None else None
        name = alias.choices[0] if isinstance(alias, AliasChoices) else field
        given = item.get("input")
        shown = "" if isinstance(given, dict) else f" (got {given!r})"
        lines.append(f"invalid setting {name}: {item['msg']}{shown}")
    return "; ".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Build settings or exit with one clear line; used by every entry point.

    Registers the settings' secrets for redaction (``storage.redact``) before anything can
    log or print them: every log record and every ``churnguard:`` line is masked from here on.
    """
    from storage import redact

    redact.install()
    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        print(f"churnguard: {redact.redact(format_settings_error(error))}", file=sys.stderr)
        raise SystemExit(2) from None
    redact.install(*secrets_of(settings))
    return settings


def secrets_of(settings: Settings) -> list[str]:
    """What must never be shown: the bot token and the passwords of the database URLs."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    found: list[str] = []
    if settings.telegram_bot_token is not None:
        found.append(settings.telegram_bot_token.get_secret_value().strip())
    for url in (settings.database_url, settings.source_url):
        try:
            password = make_url(url).password if url else None
        except ArgumentError:
            continue
        if password:
            found.append(str(password))
    return found


# ------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------

Handler = Callable[[argparse.Namespace, Settings], int]
SCHEMA_FIELDS = ("id_column", "label_column", "positive_label", "ignore_columns")


def _schema_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("dataset schema (default: settings, then the schema remembered in storage)")
    group.add_argument("--id-column", dest="id_column", metavar="NAME")
    group.add_argument("--label-column", dest="label_column", metavar="NAME")
    group.add_argument("--positive-label", dest="positive_label", metavar="VALUE")
    group.add_argument("--ignore-columns", dest="ignore_columns", metavar="A,B")


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    """Print JSON for machines when --json was given, text for people otherwise.

    Both go through ``storage.ids``' escaping: stored ids and CRM values may hold terminal
    escapes or bidirectional overrides (stores older than the id rule), which must never
    reach a terminal raw."""
    from storage.ids import visible, visible_json

    if getattr(args, "json", False):
        print(visible_json(json.dumps(payload, indent=2, default=str, ensure_ascii=False)))
    else:
        print(visible(text, keep="\n\t"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="churnguard", description="Churn prediction for retention teams, served through Telegram."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: str, help_text: str, *, schema: bool = False, json_out: bool = True
                ) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help_text, description=help_text)
        cmd.set_defaults(handler=handler)
        if json_out:
            _json_flag(cmd)
        if schema:
            _schema_flags(cmd)
        return cmd

    ingest = command("ingest", "storage.commands:ingest", "Validate a CRM export and store it in one transaction.",
                     schema=True)
    ingest.add_argument("path", type=Path, help="CSV, .csv.gz or Parquet file")
    ingest.add_argument("--encoding", default=None, metavar="NAME",
                        help="the file's text encoding, e.g. cp1251 or cp1250 (default: a byte-order mark, UTF-8, "
                             "else a guess that the report names)")
    ingest.add_argument("--as-of", dest="as_of", default=None, metavar="DATE",
                        help="the date the file describes, YYYY-MM-DD[ HH:MM] (UTC), when it has no as-of column "
                             "(CHURNGUARD_AS_OF_COLUMN); for --kind churns the date the list is complete up to "
                             "(default: the ingest time)")
    events = ingest.add_argument_group("CRM event tables and churn lists (default: a flat client table)")
    events.add_argument("--kind", default=None, metavar="KIND",
                        help="clients, subscriptions, purchases, tickets, usage, event_types, or churns "
                             "(client_id, churn_date: when clients of the client table left)")
    events.add_argument("--mapping", type=Path, default=None, metavar="FILE.toml",
                        help="column mapping file: [kind] canonical_field = \"column in the file\"")
    events.add_argument("--map", dest="map_flags", default=None, metavar="FIELD=COLUMN,...",
                        help="column mapping as flags, e.g. client_id=cust,timestamp=ts")
    command("schema", "storage.commands:show_schema", "Show the dataset schema remembered in storage.")
    command("status", "storage.commands:status", "Show what the store holds: batches, clients, models (read-only).")
    health = command("health", "jobs.health:health",
                     "Check, read-only and fast, that the store answers, a model can serve and the service runs; "
                     "exit 0 healthy, 1 unhealthy.")
    health.add_argument("--service", action="store_true",
                        help="unhealthy when no service runs on this home (the Docker HEALTHCHECK sets it)")
    health.add_argument("--max-age", dest="max_age", type=float, default=None, metavar="SECONDS",
                        help="oldest acceptable heartbeat of the running service (default 30)")
    features = command("features", "storage.events.commands:features",
                       "Write the point-in-time event features of the active clients as of a date.")
    features.add_argument("--as-of", dest="as_of", required=True, metavar="DATE",
                          help="YYYY-MM-DD or YYYY-MM-DD HH:MM:SS (UTC); events before it count")
    features.add_argument("--windows", default=None, metavar="7,30,90", help="trailing windows in days")
    features.add_argument("--client", dest="clients", action="extend", nargs="+", default=None, metavar="ID",
                          help="these clients, active or not (default: every client active at the date)")
    features.add_argument("--output", type=Path, default=None, metavar="FILE",
                          help="write FILE.csv or FILE.parquet (default: CSV on stdout)")

    train = command("train", "model.commands:train", "Run the ML lifecycle on the stored labelled data.",
                    schema=True)
    train.add_argument("--seed", type=int, default=None, help="split and search seed (default: CHURNGUARD_SEED)")
    train.add_argument("--source", choices=("auto", "clients", "events"), default=None,
                       help="train on the client table or on the event history (default: CHURNGUARD_TRAINING_SOURCE)")
    train.add_argument("--candidate", action="store_true",
                       help="keep the model as a candidate even when it passes the gate: it runs in shadow beside "
                            "the champion with CHURNGUARD_SHADOW=on (churnguard promote VERSION makes it champion)")
    report = command("report", "model.commands:report", "Print a model card summary and its path.")
    report.add_argument("version", nargs="?", help="model version (default: the champion)")
    command("models", "model.commands:models", "List model versions.")
    promote = command("promote", "model.commands:promote", "Make a model version the champion.")
    promote.add_argument("version")
    command("rollback", "model.commands:rollback", "Return to the previous champion.")
    score = command("score", "model.commands:score", "Score one client with reasons.", schema=True)
    score.add_argument("client_id")
    as_of_help = ("event models only: compute features as of this date, YYYY-MM-DD[THH:MM] (default: now, or "
                  "the end of the event data when that is earlier)")
    score.add_argument("--as-of", dest="as_of", default=None, help=as_of_help)
    top = command("top", "model.commands:top", "List the highest-risk active clients.", schema=True)
    top.add_argument("-n", type=int, default=20, help="how many clients (default 20)")
    top.add_argument("--as-of", dest="as_of", default=None, help=as_of_help)
    export = command("export", "model.commands:export",
                     "Write every flagged client, riskiest first, with reasons, to a CSV or XLSX file.", schema=True)
    export.add_argument("--output", type=Path, required=True, metavar="FILE.csv|FILE.xlsx",
                        help="the file to write (written whole or not at all)")
    export.add_argument("--as-of", dest="as_of", default=None, help=as_of_help)
    score_all = command("score-all", "model.commands:score_all",
                        "Score every stored client and store the predictions.", schema=True)
    score_all.add_argument("--as-of", dest="as_of", default=None, help=as_of_help)

    run = command("run", "bot.commands:run", "Run the Telegram bot and the scheduler (sandbox without a token).",
                  json_out=False)
    run.add_argument("--with-sample", dest="with_sample", action="store_true",
                     help="load the bundled Telco sample into an empty store and train on it (the sandbox always "
                          "does; a real bot waits for an admin's upload instead)")
    sandbox = command("sandbox", "bot.commands:sandbox", "Chat with the bot offline through a local Bot API emulator.",
                      json_out=False)
    sandbox.add_argument("--user-id", type=int, default=None, help="who you are in the chat (default: first admin)")

    jobs = command("jobs", "jobs.commands:jobs", "List or run the scheduled jobs.", json_out=False)
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    jobs_list = jobs_sub.add_parser("list", help="schedules and last runs")
    _json_flag(jobs_list)
    jobs_run = jobs_sub.add_parser("run", help="run one job once, now")
    jobs_run.add_argument("name")
    _json_flag(jobs_run)
    _schema_flags(jobs_run)
    _campaign_parser(command("campaign", "model.campaign_commands:campaign",
                             "Retention campaigns with a control group: create, contact list, contact log, report.",
                             json_out=False))
    command("shadow", "jobs.commands:shadow",
            "Show the challenger running in shadow beside the champion: both models' realised recall, precision "
            "and PR-AUC on the same new clients, with paired tests, and the verdicts so far.")
    command("drift", "jobs.commands:drift", "Show the latest drift report.")
    alerts = command("alerts", "jobs.commands:alerts", "List recent alerts.")
    alerts.add_argument("-n", type=int, default=20)
    return parser


def _campaign_parser(command: argparse.ArgumentParser) -> None:
    """``churnguard campaign ACTION``: see README "Retention campaigns"."""
    actions = command.add_subparsers(dest="campaign_command", required=True, metavar="ACTION")
    created = actions.add_parser("new", help="create a campaign from the champion's flagged clients")
    created.add_argument("--name", default=None, help="a name for people (default: Campaign N)")
    created.add_argument("--segment", default=None, metavar="EXPR",
                         help="pilot segment, e.g. \"Contract == 'Month-to-month' and tenure < 12\"")
    created.add_argument("--top", type=int, default=None, metavar="N", help="take only the N riskiest flagged clients")
    created.add_argument("--holdout", default="0.2", metavar="SHARE",
                         help="share held out as the control group: 0.2 or 20%% (default 0.2)")
    created.add_argument("--seed", type=int, default=None, help="assignment seed (default: CHURNGUARD_SEED)")
    created.add_argument("--as-of", dest="as_of", default=None,
                         help="event models only: score as of this date (default: as top does)")
    listed = actions.add_parser("list", help="the campaigns, newest first")
    contacts = actions.add_parser("contacts", help="write the contact list (treatment only, riskiest first)")
    contacts.add_argument("id", help="campaign number")
    contacts.add_argument("--output", required=True, metavar="FILE.csv", help="where to write the list")
    logged = actions.add_parser("log", help="store a contact log with columns client_id, contacted_at, outcome")
    logged.add_argument("id", help="campaign number")
    logged.add_argument("file", help="CSV, .csv.gz or Parquet file")
    reported = actions.add_parser("report", help="outcomes, uplift, clients saved and ROI, with intervals")
    reported.add_argument("id", help="campaign number")
    reported.add_argument("--chart", default=None, metavar="FILE.png", help="also draw churn over time by group")
    for action in (created, listed, contacts, logged, reported):
        _json_flag(action)


def _resolve(path: str) -> Handler:
    module_name, _, attr = path.partition(":")
    module = __import__(module_name, fromlist=[attr])
    handler: Handler = getattr(module, attr)
    return handler


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "health":
        return _main(args)
    # Docker reads a HEALTHCHECK's exit code: 0 healthy, 1 unhealthy, and 2 is reserved.
    try:
        code = _main(args)
    except SystemExit as stop:  # e.g. an invalid setting: unhealthy, with its one line on stderr
        code = stop.code if isinstance(stop.code, int) else 1
    return 0 if code == 0 else 1


def _main(args: argparse.Namespace) -> int:
    overrides = {name: getattr(args, name) for name in SCHEMA_FIELDS if getattr(args, name, None) is not None}
    settings = load_settings(**overrides)
    from storage.errors import UserError

    try:
        code = _resolve(args.handler)(args, settings)
        sys.stdout.flush()  # a closed pipe must surface here, not in the interpreter's exit
        return code
    except UserError as error:
        from storage.ids import visible, visible_json
        from storage.redact import redact

        if getattr(args, "json", False):
            payload = json.dumps({"error": str(error), **error.details}, indent=2, default=str, ensure_ascii=False)
            print(visible_json(redact(payload)))
        print(visible(f"churnguard: {redact(str(error))}", keep="\n\t"), file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `churnguard top --json | head` closed our stdout early: not an error of ours.
        # Point stdout at devnull so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
