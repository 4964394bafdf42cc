"""Calibration: fit a scenario's pools and traffic to a Ray Serve app's own metrics (``autotune calibrate``)."""
