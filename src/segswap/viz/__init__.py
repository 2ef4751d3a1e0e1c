"""Pictures people look at: overlays, correspondence drawings, contact sheets."""
