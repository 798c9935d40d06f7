"""Model files a user takes away: formats, conversion, verification, model card."""
