"""All logic of the CMPT-726 assignment-2 workflow; importing it stays light (no torch), as the Snakefile does."""
