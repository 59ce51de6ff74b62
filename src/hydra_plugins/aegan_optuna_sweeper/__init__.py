"""Hydra sweeper `aegan_optuna`: a hyperparameter search on a maintained Optuna, resumable from SQLite storage."""
