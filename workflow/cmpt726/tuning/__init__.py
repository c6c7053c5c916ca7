"""Tuning on the validation split: every variant at its best, with equal budgets (config `tuning`).

`plan` turns the config into each variant's search (no torch), `trials` runs one trial through the
trainer, `choice` ranks trials and writes what the tuned twin trains with, `summary` is what the report
shows of it. Method and files: docs/tuning.md.
"""
