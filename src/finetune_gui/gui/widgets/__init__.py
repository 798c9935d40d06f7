"""Widgets the pages share: thumbnails, the confusion matrix, the network picture, dialogs."""
