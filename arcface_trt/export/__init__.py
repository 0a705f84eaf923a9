"""Exports of built engines for serving: a Triton Inference Server model folder.

:mod:`.triton_model` says what a folder holds (tensors, files, batching); :mod:`.triton_config`
renders its ``config.pbtxt`` and :mod:`.triton_readme` its ``README.md``; :mod:`.triton` finds or
builds the engines and writes the folder atomically.
"""
