"""The Scrapy project: settings, spiders, spider and downloader middlewares, distribution over Redis."""
