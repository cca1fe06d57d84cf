"""Hostile input against real servers: each case failed on main before its bound was added (#11)."""
