"""Test equipment, never installed: fault injection for the offline site and markup rewrites."""
