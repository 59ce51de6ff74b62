"""Metrics: the evaluation protocol (evaluate.py) and its parts: reconstruction, FID backbones and the
domain classifier, FID/KID/precision-recall/mode coverage, VAE likelihood, linear probe, anomaly AUC."""
