"""What the model learned: heatmaps, suspect labels, the image map, the report."""
