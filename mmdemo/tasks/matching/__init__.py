"""Your own data: a manifest of image, text (and label) rows; classify or match; photo-domain measures."""
