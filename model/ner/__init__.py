"""Local NER models: a from-scratch char-aware BiLSTM-CRF (``NERTagger``) and an optional
fine-tuned Hugging Face backbone (``backbone.BackboneTagger``, needs ``transformers``)."""
from model.ner.tagger import NERTagger

__all__ = ["NERTagger"]
