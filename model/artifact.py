"""The trained churn model as one object: encode, score, calibrate, explain, save and load.

Everything outside ``model/`` (registry, scoring, bot, drift monitor) uses only this class, so
its API is small and stable:

* ``predict_proba_frame`` — batch scoring, vectorised; calibrated churn probabilities;
* ``predict_proba_record`` — one client from a plain dict, no pandas, one LightGBM thread: the
  bot answers "how risky is client X" without loading a frame;
* ``explain_record`` — the top reasons behind one score (LightGBM's exact SHAP values);
* ``save`` / ``load`` — LightGBM's own text format for the trees (readable by any LightGBM
  version >= 4), JSON for the encoder, calibration and threshold, and a Parquet sample of the
  training rows with their scores that the drift monitor compares new batches against, and
  ``training_ids.npy``: hashes of the clients the model was fitted on, so a later challenger is
  compared with this model only on clients it never saw (a model scores its own training rows
  too well, which would make every honest retrain look like a regression).

A client is flagged when ``probability >= threshold_``; both are on the calibrated scale.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from model.calibration import CenteredIsotonicCalibrator
from model.features import FeatureEncoder, level_key, to_float
from storage.errors import UserError
from storage.files import write_atomically

FORMAT_VERSION = 1
BOOSTER_FILE = "model.txt"
META_FILE = "model.json"
REFERENCE_FILE = "reference.parquet"
REFERENCE_ROWS = 5000
TRAINING_IDS_FILE = "training_ids.npy"
# Fixed so that hashes written by one process match those computed by another (16 bytes, as
# pandas' hash_array requires).  Not a secret: the hashes only save storing the raw ids twice.
ID_HASH_KEY = "churnguard-ids-1"


def client_id_hashes(ids: Iterable[Any]) -> np.ndarray:
    """uint64 hash per client id (``level_key`` first, so ``3``, ``3.0`` and ``"3"`` are one client);
    a missing id hashes to 0, which ``hash_array`` never gives a real string in practice."""
    keys = [level_key(value) for value in ids]
    present = np.array([key is not None for key in keys], dtype=bool)
    hashes = np.zeros(len(keys), dtype="uint64")
    if present.any():
        text = np.array([key for key in keys if key is not None], dtype=object)
        hashes[present] = pd.util.hash_array(text, hash_key=ID_HASH_KEY, categorize=False)
    return hashes


@dataclass(frozen=True)
class Contribution:
    """One reason behind a score: ``effect`` is in log-odds; > 0 raises the churn risk."""

    feature: str
    value: Any
    effect: float
    description: str | None = None  # plain words for the value, when the feature has them (event features)


class ChurnModel:
    """A fitted LightGBM churn model with its encoder, calibration and decision threshold."""

    def __init__(
        self,
        booster: lgb.Booster,
        encoder: FeatureEncoder,
        calibrator: CenteredIsotonicCalibrator,
        threshold: float,
        *,
        metadata: Mapping[str, Any] | None = None,
        reference: pd.DataFrame | None = None,
    ) -> None:
        self.booster_ = booster
        self.encoder_ = encoder
        self.calibrator_ = calibrator
        self.threshold_ = float(threshold)
        self.metadata_: dict[str, Any] = dict(metadata or {})
        self.feature_names_: list[str] = list(encoder.feature_names_)
        self.raw_columns_: list[str] = list(encoder.raw_columns_)
        self.categorical_levels_: dict[str, list[str]] = {k: list(v) for k, v in encoder.categorical_levels_.items()}
        self.train_columns_types_: dict[str, str] = encoder.column_types_
        self.importances_: dict[str, float] = _gain_importances(booster, self.feature_names_)
        self._reference = reference
        self._reference_path: Path | None = None
        # Sorted unique hashes of the clients fitted on; None when unknown (older artifacts).
        self.training_ids_: np.ndarray | None = None
        if booster.num_feature() != len(self.feature_names_):
            raise ValueError("the booster and the encoder disagree on the number of features")

    # ------------------------------------------------------------------ scoring
    def raw_scores_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Uncalibrated LightGBM probabilities (what the threshold rule and calibrator were fitted on)."""
        if len(frame) == 0:
            return np.empty(0, dtype="float64")
        matrix = self.encoder_.transform(frame)
        # Every core for batches (0 = OpenMP's default); the record path pins one thread instead,
        # where starting a thread team would cost more than scoring the row.
        return np.asarray(self.booster_.predict(matrix, num_threads=0), dtype="float64")

    def predict_proba_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated churn probability per row; columns the model never saw are ignored, absent
        columns count as missing."""
        return self.calibrator_.transform(self.raw_scores_frame(frame))

    def predict_proba_record(self, record: Mapping[str, Any]) -> float:
        """Calibrated churn probability of one client given as ``{column: value}``."""
        row = self.encoder_.transform_record(record)
        raw = float(self.booster_.predict(row, num_threads=1)[0])
        return self.calibrator_.transform_one(raw)

    def flag(self, probabilities: np.ndarray | float) -> np.ndarray | bool:
        """Whether the retention team should contact the client(s)."""
        if isinstance(probabilities, float | int):
            return bool(probabilities >= self.threshold_)
        return np.asarray(probabilities) >= self.threshold_

    def explain_record(self, record: Mapping[str, Any], top: int = 3) -> list[Contribution]:
        """The ``top`` features that moved this client's score most, strongest first."""
        return self.score_and_explain_record(record, top)[1]

    def score_and_explain_record(self, record: Mapping[str, Any], top: int = 3) -> tuple[float, list[Contribution]]:
        """The calibrated probability and the ``top`` reasons from one LightGBM call.

        ``pred_contrib`` returns each feature's share of the raw log-odds plus the bias, and
        they sum to the raw score, so the probability needs no second pass through the trees
        (one client's answer is on the bot's critical path)."""
        row = self.encoder_.transform_record(record)
        shares = np.asarray(self.booster_.predict(row, pred_contrib=True, num_threads=1))[0]
        margin = float(shares.sum())
        raw = 1.0 / (1.0 + math.exp(-margin)) if margin >= 0 else math.exp(margin) / (1.0 + math.exp(margin))
        return self.calibrator_.transform_one(raw), self._reasons(record, shares[:-1], top)

    def explain_frame(self, frame: pd.DataFrame, records: Sequence[Mapping[str, Any]],
                      top: int = 3) -> list[list[Contribution]]:
        """The ``top`` reasons of every row of ``frame`` from one vectorised ``pred_contrib`` call.

        ``records`` are the same rows as plain dicts (the values the reasons show, as
        ``explain_record`` shows them).  A long list (every flagged client) would otherwise
        cost one LightGBM call per client; the contributions are the same."""
        if len(frame) != len(records):
            raise ValueError(f"{len(frame)} rows but {len(records)} records")
        if len(frame) == 0:
            return []
        matrix = self.encoder_.transform(frame)
        shares = np.asarray(self.booster_.predict(matrix, pred_contrib=True, num_threads=0))[:, :-1]
        return [self._reasons(record, row, top) for record, row in zip(records, shares, strict=True)]

    def _reasons(self, record: Mapping[str, Any], contributions: np.ndarray, top: int) -> list[Contribution]:
        if len(contributions) != len(self.feature_names_):
            raise ValueError(f"{len(contributions)} contributions for {len(self.feature_names_)} features")
        engineered = self.encoder_.engineered_values(record)
        # Strongest first; a stable sort keeps the feature order between equal effects.
        strongest = np.argsort(-np.abs(np.asarray(contributions, dtype="float64")), kind="stable")
        reasons: list[Contribution] = []
        for index in strongest[: max(int(top), 0)]:
            name = self.feature_names_[int(index)]
            if name in engineered:
                value: Any = None if math.isnan(engineered[name]) else engineered[name]
            else:
                value = record.get(name)
                if isinstance(value, float) and math.isnan(value):
                    value = None
            reasons.append(Contribution(feature=name, value=value, effect=float(contributions[int(index)])))
        return reasons

    # ------------------------------------------------------------------ training clients
    def set_training_ids(self, ids: Iterable[Any]) -> None:
        """Remember which clients the model was fitted on (missing ids are not recorded)."""
        hashes = client_id_hashes(ids)
        self.training_ids_ = np.unique(hashes[hashes != 0])

    def trained_on(self, ids: Iterable[Any]) -> np.ndarray | None:
        """Per id: was this client among the fitted rows?  None when the model does not know its
        training clients.  A missing id counts as seen: a fair comparison cannot vouch for it."""
        if self.training_ids_ is None:
            return None
        hashes = client_id_hashes(ids)
        return np.asarray((hashes == 0) | np.isin(hashes, self.training_ids_), dtype=bool)

    def newest_training_date(self) -> pd.Timestamp | None:
        """The newest as-of date the model trained on, when it recorded its training dates:
        rows of later dates are new to it, whoever the client."""
        dates = self.metadata_.get("training_dates") or []
        return max(pd.Timestamp(d) for d in dates) if dates else None

    # ------------------------------------------------------------------ reference sample
    def set_reference(self, frame: pd.DataFrame, seed: int = 0) -> None:
        """Keep a sample (<= 5000 rows) of the training columns and their scores for drift checks."""
        sample = frame.sample(n=min(REFERENCE_ROWS, len(frame)), random_state=seed) if len(frame) else frame
        self._reference = self._reference_table(sample)

    def _reference_table(self, frame: pd.DataFrame) -> pd.DataFrame:
        columns: dict[str, Any] = {}
        for column in self.raw_columns_:
            series = frame[column] if column in frame.columns else pd.Series([None] * len(frame), index=frame.index)
            if self.train_columns_types_[column] == "categorical":
                columns[column] = pd.Series([level_key(v) for v in series.astype(object)], dtype="str",
                                            index=frame.index)
            else:
                columns[column] = pd.Series([to_float(v) for v in series.astype(object)], dtype="float64",
                                            index=frame.index)
        table = pd.DataFrame(columns, index=frame.index)
        table["score"] = self.predict_proba_frame(frame)
        return table.reset_index(drop=True)

    def reference_frame(self) -> pd.DataFrame:
        """Training sample with a ``score`` column (loaded lazily from ``reference.parquet``)."""
        if self._reference is None:
            if self._reference_path is None or not self._reference_path.exists():
                raise UserError("this model has no reference sample; retrain it to enable drift checks")
            self._reference = pd.read_parquet(self._reference_path)
        return self._reference.copy()

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path) -> list[Path]:
        """Write the artifact files into ``directory`` (each written whole, then renamed into place)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        booster_path = directory / BOOSTER_FILE
        write_atomically(booster_path, self.booster_.model_to_string().encode("utf-8"))
        meta = {
            "format_version": FORMAT_VERSION,
            "threshold": self.threshold_,
            "encoder": self.encoder_.to_dict(),
            "calibrator": self.calibrator_.to_dict(),
            "importances": self.importances_,
            "metadata": self.metadata_,
        }
        meta_path = directory / META_FILE
        write_atomically(meta_path, json.dumps(meta, indent=2, ensure_ascii=False, allow_nan=False).encode("utf-8"))
        paths = [booster_path, meta_path]
        if self.training_ids_ is not None:
            buffer = io.BytesIO()
            np.save(buffer, np.asarray(self.training_ids_, dtype="uint64"), allow_pickle=False)
            ids_path = directory / TRAINING_IDS_FILE
            write_atomically(ids_path, buffer.getvalue())
            paths.append(ids_path)
        reference = self._reference
        if reference is None and self._reference_path is not None and self._reference_path.exists():
            reference = pd.read_parquet(self._reference_path)
        if reference is not None:
            reference_path = directory / REFERENCE_FILE
            handle, temporary = tempfile.mkstemp(dir=directory, prefix=".reference-", suffix=".parquet")
            os.close(handle)
            try:
                reference.to_parquet(temporary, index=False)
                os.replace(temporary, reference_path)
            finally:
                if os.path.exists(temporary):
                    os.unlink(temporary)
            paths.append(reference_path)
        return paths

    @classmethod
    def load(cls, directory: Path) -> ChurnModel:
        directory = Path(directory)
        booster_path, meta_path = directory / BOOSTER_FILE, directory / META_FILE
        for path in (booster_path, meta_path):
            if not path.is_file():
                raise UserError(f"model files are missing: {path} does not exist", path=str(path))
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("format_version") != FORMAT_VERSION:
                raise ValueError(f"unsupported format version {meta.get('format_version')!r}")
            booster = lgb.Booster(model_str=booster_path.read_text(encoding="utf-8"))
            model = cls(
                booster,
                FeatureEncoder.from_dict(meta["encoder"]),
                CenteredIsotonicCalibrator.from_dict(meta["calibrator"]),
                float(meta["threshold"]),
                metadata=meta.get("metadata", {}),
            )
            ids_path = directory / TRAINING_IDS_FILE
            if ids_path.is_file():
                ids = np.load(ids_path, allow_pickle=False)
                if ids.dtype != np.dtype("uint64") or ids.ndim != 1:
                    raise ValueError(f"{TRAINING_IDS_FILE} holds {ids.dtype} of shape {ids.shape}, not uint64 hashes")
                model.training_ids_ = ids
        except (ValueError, KeyError, TypeError, OSError, lgb.basic.LightGBMError) as error:
            raise UserError(f"model in {directory} is unreadable: {error}", path=str(directory)) from error
        model._reference_path = directory / REFERENCE_FILE
        return model


def _gain_importances(booster: lgb.Booster, names: list[str]) -> dict[str, float]:
    gains = np.asarray(booster.feature_importance(importance_type="gain"), dtype="float64")
    total = float(gains.sum())
    shares = gains / total if total > 0 else np.zeros_like(gains)
    ranked = sorted(zip(names, shares, strict=True), key=lambda item: -item[1])
    return {name: float(share) for name, share in ranked}


__all__ = ["ID_HASH_KEY", "TRAINING_IDS_FILE", "ChurnModel", "Contribution", "client_id_hashes"]
