"""Thin spiders: they decide what to fetch next and hand each response to a parser."""
