"""The bottom floor: what fxcrawl knows of FX168 (the site description), the records read from
its pages, and the pure parsers from a page to those records. Imports nothing of fxcrawl's own."""
