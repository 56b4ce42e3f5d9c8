"""Scrapy item pipelines (validate → dedupe → store), in Scrapy's meaning of the word."""
