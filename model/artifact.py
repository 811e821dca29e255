"""The trained churn model as one object: encode, score, calibrate, explain, save and load.

Everything outside ``model/`` (registry, scoring, bot, drift monitor) uses only this class, so
its API is small and stable:

* ``predict_proba_frame`` — batch scoring, vectorised; calibrated churn probabilities;
* ``predict_proba_record`` — one client from a plain dict, no pandas, one LightGBM thread: the
  bot answers "how risky is client X" without loading a frame;
* ``explain_record`` — the top reasons behind one score (LightGBM's exact SHAP values);
* ``save`` / ``load`` — LightGBM's own text format for the trees (readable by any LightGBM
  version >= 4), JSON for the encoder, calibration and threshold, and a Parquet sample of the
  training rows with their scores that the drift monitor compares new batches against.

A client is flagged when ``probability >= threshold_``; both are on the calibrated scale.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from model.calibration import CenteredIsotonicCalibrator
from model.features import FeatureEncoder, level_key, to_float
from storage.errors import UserError

FORMAT_VERSION = 1
BOOSTER_FILE = "model.txt"
META_FILE = "model.json"
REFERENCE_FILE = "reference.parquet"
REFERENCE_ROWS = 5000


@dataclass(frozen=True)
class Contribution:
    """One reason behind a score: ``effect`` is in log-odds; > 0 raises the churn risk."""

    feature: str
    value: Any
    effect: float


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
        if booster.num_feature() != len(self.feature_names_):
            raise ValueError("the booster and the encoder disagree on the number of features")

    # ------------------------------------------------------------------ scoring
    def raw_scores_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Uncalibrated LightGBM probabilities (what the threshold rule and calibrator were fitted on)."""
        if len(frame) == 0:
            return np.empty(0, dtype="float64")
        matrix = self.encoder_.transform(frame)
        return np.asarray(self.booster_.predict(matrix, num_threads=2), dtype="float64")

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
        row = self.encoder_.transform_record(record)
        contributions = np.asarray(self.booster_.predict(row, pred_contrib=True, num_threads=1))[0, :-1]
        engineered = self.encoder_.engineered_values(record)
        reasons: list[Contribution] = []
        for name, effect in zip(self.feature_names_, contributions, strict=True):
            if name in engineered:
                value: Any = None if math.isnan(engineered[name]) else engineered[name]
            else:
                value = record.get(name)
                if isinstance(value, float) and math.isnan(value):
                    value = None
            reasons.append(Contribution(feature=name, value=value, effect=float(effect)))
        reasons.sort(key=lambda item: -abs(item.effect))
        return reasons[: max(int(top), 0)]

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
        _atomic_write(booster_path, self.booster_.model_to_string().encode("utf-8"))
        meta = {
            "format_version": FORMAT_VERSION,
            "threshold": self.threshold_,
            "encoder": self.encoder_.to_dict(),
            "calibrator": self.calibrator_.to_dict(),
            "importances": self.importances_,
            "metadata": self.metadata_,
        }
        meta_path = directory / META_FILE
        _atomic_write(meta_path, json.dumps(meta, indent=2, ensure_ascii=False, allow_nan=False).encode("utf-8"))
        paths = [booster_path, meta_path]
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
        except (ValueError, KeyError, TypeError, lgb.basic.LightGBMError) as error:
            raise UserError(f"model in {directory} is unreadable: {error}", path=str(directory)) from error
        model._reference_path = directory / REFERENCE_FILE
        return model


def _gain_importances(booster: lgb.Booster, names: list[str]) -> dict[str, float]:
    gains = np.asarray(booster.feature_importance(importance_type="gain"), dtype="float64")
    total = float(gains.sum())
    shares = gains / total if total > 0 else np.zeros_like(gains)
    ranked = sorted(zip(names, shares, strict=True), key=lambda item: -item[1])
    return {name: float(share) for name, share in ranked}


def _atomic_write(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


__all__ = ["ChurnModel", "Contribution"]
