"""Scrapy spiders, article extraction and item pipelines."""
