"""The relational store: models, engines and sessions, the writer, the frontier, the run ledger, locks,
migrations, the spool and the read side. Knows the site's records; knows nothing of Scrapy."""
