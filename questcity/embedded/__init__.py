"""Local services for ``questcity up`` and for the test suite: a throwaway PostgreSQL cluster, a
SeaweedFS S3 server, and the TCP fault proxy that ``questcity chaos`` switches."""
