"""Analyses of the test-set predictions that need no model: likely label errors (cleanlab,
`label_issues`) and agreement with human annotators (CIFAR-10H, `human_labels`).

They read the per-image score files the evaluation writes; nothing here imports torch.
"""
