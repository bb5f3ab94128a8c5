"""Datasets and Lightning DataModules. Every data module is registered under kind ``data``.

A data module is a ``LightningDataModule`` whose constructor arguments are its configuration
(``batch_size`` and ``num_workers`` are filled from the recipe's ``trainer``) and which offers

- ``describe() -> DataInfo``: shapes, tasks and window layout, without reading the data;
- ``info() -> DataInfo``: the same plus normalisation statistics (reads the dataset);
- ``train_dataloader()`` yielding :class:`wamzoo.batch.Batch`.
"""
