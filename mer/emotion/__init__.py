"""Emotion of an interval: the AU-evidence classifier (:mod:`~mer.emotion.evidence`) and its
fusion with SMA-STN (:mod:`~mer.emotion.fusion`)."""
