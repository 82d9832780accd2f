"""Call control for the resident hotline: the ARI application, call sessions and the IVR."""
