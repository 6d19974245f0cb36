"""The continual link-prediction evaluation."""
