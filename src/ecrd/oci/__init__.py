"""The OCI door: the /v2/ distribution API, translated to the registry's services."""
