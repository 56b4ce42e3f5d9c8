"""The offline site: HTML rendering in the portal's markup, the fixture server, the large-site generator."""
