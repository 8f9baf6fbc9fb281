"""TorchServe handler of SMA-STN: ``(S + 1, C, M, M)`` uint8 DSSI -> class probabilities.

Request body: one sample as ``.npy`` bytes (:func:`mer.serving.encode_sample`).
Response: ``{"probs": [n_classes floats, softmax], "batch_size", "model", "version"}``.
"""

from mer_handler import MerHandler


class SmaStnHandler(MerHandler):
    """SMA-STN emotion classifier (softmax over the card's labels)."""

    served_name = "sma_stn"
