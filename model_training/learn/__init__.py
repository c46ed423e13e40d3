"""Learning: the SimCLR method, its training and the embedding of every image.

A method is an augmentation, a backbone and a loss (`simclr`); the training
loop (`train`) knows nothing of which method it runs. `checkpoints` keeps the
trained models, `embed` stores one vector per public image.
"""
