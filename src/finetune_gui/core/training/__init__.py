"""Training a run: the job, devices, feature cache."""
