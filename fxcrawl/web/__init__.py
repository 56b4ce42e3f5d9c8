"""fxcrawl's read-only web view and JSON API (`fxcrawl serve`)."""
