"""A real model for ``serve_configs/real-model.yaml`` that runs on CPU: a digit classifier.

A multi-layer perceptron fitted, as the replica starts, on the 8x8 handwritten digits that scikit-learn ships
(1,797 images, ``sklearn.datasets.load_digits``; nothing is downloaded). It follows the backend protocol of
``autotune.live.serve_app``: constructed with no arguments, called as ``predict(items) -> outputs``, one
output per request body, in order. A body ``{"pixels": [64 numbers, 0-16]}`` is classified; ``{}`` or
``{"index": i}`` classifies the i-th image of the data set (what the load generator's empty bodies hit).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

HIDDEN = (128, 128)  # wide enough that a batch's time grows with its size on a CPU


class DigitsClassifier:
    def __init__(self) -> None:
        from sklearn.datasets import load_digits
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        data = load_digits()
        self.images = data.data.astype(np.float64)
        self.model = MLPClassifier(hidden_layer_sizes=HIDDEN, max_iter=40, random_state=0)
        with warnings.catch_warnings():  # 40 epochs classify the training set exactly; more add start-up time
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.model.fit(self.images, data.target)

    def _row(self, item: dict[str, Any]) -> np.ndarray:
        if "pixels" in item:
            px = np.asarray(item["pixels"], dtype=np.float64)
            if px.shape != (64,) or not np.all(np.isfinite(px)):
                raise ValueError("pixels: expected 64 finite numbers (an 8x8 image, 0-16)")
            return px
        return self.images[int(item.get("index", 0)) % len(self.images)]

    def predict(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        x = np.stack([self._row(i) for i in items])
        proba = self.model.predict_proba(x)
        return [{"digit": int(p.argmax()), "p": round(float(p.max()), 4)} for p in proba]
