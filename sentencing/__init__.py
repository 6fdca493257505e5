"""liangxing (量刑): sentencing recommendations with similar-case retrieval.

The core package: the case model, sentences, the charge catalogue, the guideline engine,
parsers and importers of judgments, the case store and the synthetic demo corpus.
"""

__version__ = "0.1.0"
