"""The Model tab's builders: one `FamilyBuilder` per model family (`app.builders.registry`)."""
