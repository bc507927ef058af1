"""The embedding explorer's pieces that need no widget: coordinates, colours, shading, selection."""
