"""magicgui dock widgets for napari.

The widgets are thin: they read layers, run the core in a worker thread and
add result layers. They are loaded through the npe2 manifest, which points
straight at each widget's module, so importing this package loads nothing.
"""
