"""What the per-image test scores reveal: label errors, agreement with people (CIFAR-10H), near-duplicates."""
