"""Similar-case retrieval: an encoder trained on the corpus, a TF-IDF sparse side, FAISS, filters and cohorts.

Entry point: :class:`retrieval.search.RetrievalIndex` (build / load / add / delete / search / cohort).
"""
