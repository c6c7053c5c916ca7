"""What the per-image test scores reveal: likely label errors (`label_issues`), agreement with human annotators
(`human_labels`, CIFAR-10H) and train-test near-duplicates (`near_duplicates`); none imports torch at import time.
"""
