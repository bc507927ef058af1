"""Data in: readers, validation, preprocessing and the device-resident cell batches."""
from engine.data.batches import CellBatches
