"""Data: readers per dataset family in the standard prepared layouts (``readers``, built by name with
``factory.create_reader``), the synthetic world, the prepared index, class statistics, loaders and
transforms, and the data_preparation steps (``preparation``)."""
