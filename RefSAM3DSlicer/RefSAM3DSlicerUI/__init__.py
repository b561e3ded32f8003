"""Qt-side mixins of the RefSAM3D widget: panel flows that need the Slicer application (untestable headless;
the behaviour they drive lives in RefSAM3DSlicerLib)."""
