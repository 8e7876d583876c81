"""Dataset preparation and the bundled synthetic demo dataset."""
