"""TorchServe handler of the AU detector: ``(2, 1, M, M)`` uint8 pair -> AU probabilities.

Request body: one sample (aligned frame, its neutral reference) as ``.npy`` bytes
(:func:`mer.serving.encode_sample`).
Response: ``{"probs": [n_aus floats, sigmoid], "batch_size", "model", "version"}``.
"""

from mer_handler import MerHandler


class AuDetectorHandler(MerHandler):
    """Multi-label Action Unit detector (a sigmoid per AU in the card's labels)."""

    served_name = "au_detector"
