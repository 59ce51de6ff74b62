"""aegan: reproducible training and evaluation of the classic autoencoders and GANs."""

__version__ = "0.1.0"
