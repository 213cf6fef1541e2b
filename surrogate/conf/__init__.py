"""The Hydra layer: structured config schemas and Hydra callbacks. Only ``train.py`` and the YAML
under ``configs/`` load it; the rest of ``surrogate`` never imports Hydra."""
