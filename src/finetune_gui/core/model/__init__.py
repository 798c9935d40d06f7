"""The network: backbones, how the classifier is built and cut, frozen-layer features, and the
softmax head solved on them."""
