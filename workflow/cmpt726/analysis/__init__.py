"""Analyses of the data and the trained models that sit beside the main workflow."""
