"""npe2 reader, writer and sample-data hooks (napari-side; the core never imports these)."""
