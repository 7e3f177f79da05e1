"""Local text classifier for Label Studio ``<Choices>``: hashed char n-gram TF-IDF + LR."""
from model.textcat.classifier import TextClassifier

__all__ = ["TextClassifier"]
