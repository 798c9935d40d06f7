"""Reading the user's folder: images, scan, split, duplicates, decoding, storage, augmentation."""
