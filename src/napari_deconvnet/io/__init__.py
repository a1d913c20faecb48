"""napari's side of files: npe2 readers, writers and sample data (the core never imports these).

One module per concept:

- :mod:`.image_files`: reading image files (TIFF, PNG/JPEG, ``.npy``,
  OME-Zarr) with their geometry; :mod:`.layer_doc`: the layer document,
  axes and units the readers and writers agree on;
- :mod:`.writer`: writing a layer to TIFF, OME-TIFF or OME-Zarr (atomically,
  with :mod:`napari_deconvnet.core.atomic`);
- :mod:`.restored_reader`, :mod:`.model_reader`, :mod:`.restored_writer`:
  the npe2 hooks "Open restored", model files and "OME-Zarr, restored";
  :mod:`.reader` gathers the readers' public names;
- :mod:`.lazy`: when a file is read lazily, and the reader's settings;
  :mod:`.display`: contrast limits and notifications;
- :mod:`.registry`: model files registered with the widgets;
- :mod:`.samples`: the sample data.
"""
