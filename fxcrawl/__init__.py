"""The application on top: the command line, the crawl runner, the scheduler, the live check and
the web view. Everything below it is a library it drives."""
