"""The built-in operations, one module per family; add a module here to add operations.

Every module of this package is imported the first time a spec is listed
(:func:`napari_deconvnet.core.specs.specs`), and registers its specs with
:func:`~napari_deconvnet.core.specs.register`. A new classical method, noise
model or PSF kind is therefore one new file here: the widgets and the command
line offer it without further edits. Modules here import neither torch nor
napari; they name their implementations as ``"module:attribute"``.
"""
