"""fxcrawl's Scrapy project: site description, page parsers, spiders, replay server and CLI."""
