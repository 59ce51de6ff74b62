"""Models: shared building blocks and one LightningModule per model family."""
