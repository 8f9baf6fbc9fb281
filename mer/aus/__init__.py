"""Action Unit scores: the training-free FACS rules (:mod:`~mer.aus.rules`)."""
