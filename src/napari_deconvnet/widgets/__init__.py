"""magicgui dock widgets for napari.

The widgets are thin: they render the core's specs, run the core's
generators in a worker thread and add result layers. They are loaded through
the npe2 manifest, which points straight at each widget's module, so
importing this package loads nothing.

Shared pieces, one of each:

- ``_forms``: a parameter form rendered from a spec (``ParamForm``,
  ``SpecForms``);
- ``_psf``: the PSF picker (``PsfPicker``) and ``build_psf`` for the worker;
- ``_worker``: the base of the dock widgets (``WorkerWidget``, ``Job``):
  Run, Cancel, progress, notifications, one job at a time;
- ``_layers``: layer choices and ``add_result`` (a result layer with the
  source's geometry and its provenance record).
"""
