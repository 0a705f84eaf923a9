"""Parity in identity space: verification on pair sets and rank-1 on identity folders.

``pairs`` (``.bin``, CSV, LFW ``pairs.txt``) and ``identities`` read the inputs (``.bin`` files
through ``unpickler``, which never runs code); ``metrics`` computes InsightFace's verification
protocol; ``job`` runs ``compare --pairs``/``--identities``; ``plot`` draws the ROC chart;
``demo`` writes the toy pair set of ``make-pairs``.
"""
