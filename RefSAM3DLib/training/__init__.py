"""Training and fine-tuning: datalists, cached preprocessing, crops + augmentation, prompt simulation, loop."""
