"""The shared layer: task contract, trainer, data, checkpoints, cards, registry, metrics, errors."""
