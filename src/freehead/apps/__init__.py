"""Applications over the Reenactor: file jobs, the live loop, the demo and the web page."""
