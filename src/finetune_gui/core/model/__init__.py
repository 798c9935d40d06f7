"""The network: backbones, how the classifier is built and cut, frozen-layer features."""
