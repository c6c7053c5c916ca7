"""What the per-image test scores reveal: likely label errors (`label_issues`, cleanlab), agreement with
human annotators (`human_labels`, CIFAR-10H) and train-test near-duplicates (`near_duplicates`).

Each is the function of one rule, reading score files or prepared arrays; none imports torch at import time.
"""
