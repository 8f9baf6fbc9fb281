"""Action Unit scores: FACS rules (:mod:`~mer.aus.rules`), blendshape evidence
(:mod:`~mer.aus.blendshapes`) and their fusion with the learned detector
(:mod:`~mer.aus.fusion`)."""
