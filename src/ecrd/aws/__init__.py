"""The AWS door: SigV4 authentication, dispatch and the JSON 1.1 and Query protocols on ``POST /``."""
