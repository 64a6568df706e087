#!/usr/bin/python3
"""xgb_predict.py MODEL ROWS: predictions of an XGBoost model file on rows, with Python's xgboost.

The cross-check of `hvsctl model export` (tests/hvsctl/test_hvsctl_model_it.c): MODEL is the
exported UBJ file, loaded exactly as a user would (xgboost.Booster(model_file=MODEL)); ROWS holds
one row per line, whitespace-separated values, "nan" for a missing value. Prints one prediction
per line ("%.9g"). Exit 2 on bad arguments, 3 when the model's feature count is not the rows'.
"""
import sys

import numpy as np
import xgboost


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: xgb_predict.py MODEL ROWS", file=sys.stderr)
        return 2
    booster = xgboost.Booster(model_file=sys.argv[1])
    rows = np.loadtxt(sys.argv[2], dtype=np.float32, ndmin=2)
    if booster.num_features() != rows.shape[1]:
        print(f"model has {booster.num_features()} features, rows have {rows.shape[1]}",
              file=sys.stderr)
        return 3
    pred = booster.predict(xgboost.DMatrix(rows, missing=np.nan))
    for p in pred:
        print("%.9g" % p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
