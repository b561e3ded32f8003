"""RefSAM3D network: one concept per module (see ARCHITECTURE.md)."""
