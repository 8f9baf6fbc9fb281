"""Evaluation of the pipeline on hand-labelled real clips (``mer evaluate-real``).

No web or queue imports: :func:`evaluate_real` takes the analysis function as a parameter.
"""

from mer.evaluation.labels import ClipNotFoundError, LabelFileError, load_labels
from mer.evaluation.real import RealReport, evaluate_real

__all__ = ["ClipNotFoundError", "LabelFileError", "RealReport", "evaluate_real", "load_labels"]
