"""Tuning on the validation split (config `tuning`): `plan`, `trials`, `choice`, `summary`; see docs/tuning.md."""
