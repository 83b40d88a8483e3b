"""The ``files`` driver: JSON, CSV and XML files from the lake's inbox (see :mod:`.driver`)."""
