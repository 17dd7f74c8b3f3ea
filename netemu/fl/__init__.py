"""Federated learning: shared math of the FL protocols and compressed updates (``compress``)."""
