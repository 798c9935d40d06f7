"""finetune-gui: fine-tune a pretrained CNN on a folder of images, from a window, a CLI or Python."""

__version__ = "0.1.0"
