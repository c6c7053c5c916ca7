"""All logic of the CMPT-726 assignment-2 workflow.

Importing the package must stay light (no torch): the Snakefile imports
`cmpt726.config` while it builds the DAG. Modules that need torch import it
themselves.
"""
