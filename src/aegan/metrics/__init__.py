"""Metrics: reconstruction quality now; FID/KID and mode coverage are separate modules."""
